// Runs inside the sandbox (bwrap or a container) during install: network.py, forwarder_argv.
// The sandbox has its own, empty network namespace, so package managers cannot reach
// anything; their only way out is the allow-list proxy's UNIX socket, mounted into the
// sandbox. npm, yarn and pnpm only speak to proxies over TCP, so this listens on the
// sandbox's own loopback (invisible to the host) and pipes each connection to the socket,
// then runs the install command and exits with its status.
//
// usage: node forward.js <unix socket> <port> <shell command>
"use strict";
const net = require("net");
const { spawn } = require("child_process");

const [socketPath, port, command] = process.argv.slice(2);

const server = net.createServer((client) => {
  const upstream = net.connect({ path: socketPath });
  client.pipe(upstream).pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});

server.listen(Number(port), "127.0.0.1", () => {
  const child = spawn("/bin/sh", ["-c", command], { stdio: "inherit" });
  child.on("exit", (code, signal) => {
    // Keep the shell convention (128 + signal number) so the runner can tell why it died.
    const { constants } = require("os");
    process.exit(code !== null ? code : 128 + (constants.signals[signal] || 0));
  });
});
server.on("error", (err) => {
  console.error(`percel: install proxy forwarder failed: ${err.message}`);
  process.exit(70);
});
