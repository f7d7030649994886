#!/usr/bin/env node
// The cost of tracing and metrics on a first import: the same full sync of N
// files of ~2 KB with OpenTelemetry export on (to an OTLP/HTTP receiver in this
// process, on loopback, answering 200 at once) and off (no OTEL_ variable set),
// in `rounds` pairs whose order alternates, each a fresh source on one database.
// Reports each pair's ratio and the median (goal ≤ 1.05), with what was sent.
//
//   npx node scripts/bench/telemetry.mjs [files=100000] [rounds=3] [protocol=http/protobuf]
import * as http from "node:http"
import { corpus, database, machine, median, runCli, warm } from "./lib.mjs"

const files = Number(process.argv[2] ?? 100000)
const rounds = Number(process.argv[3] ?? 3)
const protocol = process.argv[4] ?? "http/protobuf"
const dir = corpus(`/tmp/tidemark-bench-corpus-${files}`, files)
const db = await database()
console.log(machine())
console.log(`corpus: ${files} files in ${dir}; export over ${protocol}`)

let received = { requests: 0, bytes: 0, traces: 0 }
const receiver = http.createServer((req, res) => {
  let bytes = 0
  req.on("data", (chunk) => (bytes += chunk.length))
  req.on("end", () => {
    received.requests++
    received.bytes += bytes
    if (req.url === "/v1/traces") received.traces++
    res.writeHead(200, { "content-type": "application/json" }).end("{}")
  })
})
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve))
const endpoint = `http://127.0.0.1:${receiver.address().port}`

let sources = 0
const sync = async (exporting) => {
  warm(dir)
  received = { requests: 0, bytes: 0, traces: 0 }
  const env = {
    DATABASE_URL: db.url,
    ...(exporting ? { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: protocol } : {})
  }
  const run = await runCli(["sync", dir, "--source", `bench-otel-${process.pid}-${sources++}`, "--json"], env)
  const summary = JSON.parse(run.stdout.trim().split("\n").at(-1))
  if (summary.imported !== files) throw new Error(`imported ${summary.imported}, not ${files}`)
  const sent = exporting
    ? `, sent ${received.requests} requests (${received.traces} of spans), ${(received.bytes / 1024).toFixed(0)} KiB`
    : ""
  console.log(
    `  export ${exporting ? "on: " : "off:"} ${run.seconds.toFixed(2)} s, peak ${run.peakMiB.toFixed(0)} MiB, cpu ${run.cpuSeconds.toFixed(2)} s${sent}`
  )
  if (exporting && received.traces === 0) throw new Error("export on, but no spans arrived")
  if (!exporting && received.requests > 0) throw new Error("export off, but something was sent")
  return run
}

const ratios = []
const cpuRatios = []
for (let round = 0; round < rounds; round++) {
  console.log(`round ${round + 1}:`)
  const [first, second] = round % 2 === 0 ? [false, true] : [true, false]
  const a = await sync(first)
  const b = await sync(second)
  const [off, on] = first ? [b, a] : [a, b]
  ratios.push(on.seconds / off.seconds)
  cpuRatios.push(on.cpuSeconds / off.cpuSeconds)
  console.log(
    `  on / off: ${(on.seconds / off.seconds).toFixed(3)}× wall, ${(on.cpuSeconds / off.cpuSeconds).toFixed(3)}× cpu`
  )
}
console.log(
  `median on / off over ${rounds} rounds: ${median(ratios).toFixed(3)}× wall (${ratios.map((r) => r.toFixed(3)).join(", ")}), ${median(cpuRatios).toFixed(3)}× cpu of the CLI`
)
receiver.close()
await db.stop()
