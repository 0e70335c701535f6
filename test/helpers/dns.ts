// A DNS server for tests, on loopback UDP: answers A queries from a table the test changes, so
// DNS endpoints can come and go without any outside resolver.
import dgram from 'node:dgram'

export interface TestDns {
  address: string
  /** Sets the A records of a name (an empty list: an answer with no record). */
  set (name: string, addresses: string[]): void
  /** Makes every query fail (SERVFAIL) until called with false. */
  fail (on: boolean): void
  close (): Promise<void>
}

function readName (msg: Buffer, offset: number): { name: string, end: number } {
  const labels: string[] = []
  let i = offset
  while (msg[i] !== 0) {
    const len = msg[i]!
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'))
    i += len + 1
  }
  return { name: labels.join('.').toLowerCase(), end: i + 1 }
}

export async function startTestDns (): Promise<TestDns> {
  const records = new Map<string, string[]>()
  let failing = false
  const socket = dgram.createSocket('udp4')
  socket.on('message', (msg, peer) => {
    const { name, end } = readName(msg, 12)
    const qtype = msg.readUInt16BE(end)
    const question = msg.subarray(12, end + 4)
    const answers = qtype === 1 && !failing ? records.get(name) ?? [] : []
    const header = Buffer.alloc(12)
    msg.copy(header, 0, 0, 2) // id
    // QR, opcode 0, AA, RD copied, RA; RCODE 2 (SERVFAIL) when failing, 3 (NXDOMAIN) for unknown names
    const rcode = failing ? 2 : (records.has(name) ? 0 : 3)
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    const parts = [header, question]
    for (const address of answers) {
      const rr = Buffer.alloc(16)
      rr.writeUInt16BE(0xc00c, 0) // pointer to the question's name
      rr.writeUInt16BE(1, 2) // A
      rr.writeUInt16BE(1, 4) // IN
      rr.writeUInt32BE(1, 6) // TTL 1 s
      rr.writeUInt16BE(4, 10)
      address.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i))
      parts.push(rr)
    }
    socket.send(Buffer.concat(parts), peer.port, peer.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return {
    address: `127.0.0.1:${socket.address().port}`,
    set: (name, addresses) => { records.set(name.toLowerCase(), addresses) },
    fail: (on) => { failing = on },
    close: () => new Promise((resolve) => socket.close(() => resolve()))
  }
}
