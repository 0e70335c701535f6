// Loaded with `node --import` into a gateway under test: taking an endpoint throws, for every
// request's try and every tunnel. It stands in for a defect on the request path, which must end
// that request (internal_error), never the process.
import { Endpoint } from '../../src/upstream/endpoint.ts'

Endpoint.prototype.acquire = function acquire (): never {
  throw new TypeError('a defect on the request path (injected by the test)')
}
