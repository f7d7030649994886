// 6. A TCP proxy of our own between tidemark and the database that drops
// connections and stalls them (1–4 s) at random, the whole time. Syncs are
// rerun until one exits 0, as a user would; the database ends equal to the folder.
import * as net from "node:net"
import { between, compare, folderHashes, notesFolder, syncUntilDone } from "./lib.mjs"

export const name = "proxy"

const startProxy = (socketPath) => {
  const pairs = new Set()
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath)
    const pair = { client, upstream }
    pairs.add(pair)
    const close = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on("error", close).on("close", close)
    upstream.on("error", close).on("close", close)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, pairs, port: server.address().port }))
  )
}

export const run = async ({ url, socket, short }) => {
  const proxy = await startProxy(socket)
  const target = new URL(url)
  const proxied = `postgresql://${target.username}@127.0.0.1:${proxy.port}${target.pathname}`
  const faults = { drops: 0, stalls: 0 }
  let stopped = false
  const inject = async () => {
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, between(200, 1200)))
      const live = [...proxy.pairs]
      if (live.length === 0) continue
      const pair = live[Math.floor(Math.random() * live.length)]
      if (Math.random() < 0.5) {
        faults.drops++
        pair.client.destroy()
        pair.upstream.destroy()
      } else {
        faults.stalls++
        pair.client.pause()
        pair.upstream.pause()
        setTimeout(
          () => {
            pair.client.resume()
            pair.upstream.resume()
          },
          between(1000, 4000)
        )
      }
    }
  }
  const injecting = inject()
  const dir = notesFolder("proxy", short ? 10000 : 40000)
  const source = `chaos-proxy-${Date.now()}`
  let runs
  try {
    runs = await syncUntilDone(["sync", dir, "--source", source, "--json"], { DATABASE_URL: proxied }, 30)
  } finally {
    stopped = true
    await injecting
    proxy.server.close()
    for (const pair of proxy.pairs) pair.client.destroy()
  }
  const check = await compare(url, source, folderHashes(dir))
  return {
    runs,
    faults: faults.drops + faults.stalls,
    lost: check.lost,
    duplicates: check.duplicates,
    equal: check.equal,
    ok: check.equal,
    detail: `${faults.drops} connections dropped, ${faults.stalls} stalled; finished after ${runs} run${runs === 1 ? "" : "s"}`
  }
}
