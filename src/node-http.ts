// node:http, as the module itself. An ES import of a builtin builds its namespace by reading every
// export, and node:http's WebSocket, CloseEvent and MessageEvent are lazy getters: reading them
// loads Node's bundled fetch and WebSocket client (its own copy of undici, ~700 KB of source) that
// the gateway never uses: about 1 MB of heap kept for the life of the process.
export const http = process.getBuiltinModule('node:http')
