// Head sampling as a real OpenTelemetry SDK does it: a tracer whose sampler is OpenTelemetry's
// JaegerRemoteSampler, polling Clew's sampling port for the service's strategy.
//
//   node check.mjs <sampling url> <service> [polling interval ms]
//
// Reads commands from stdin, one per line, and answers each with one JSON line on stdout:
//   measure [span name] [roots]  -> {"name", "roots", "sampled", "rate", "sampler"}
// `rate` is the share of `roots` (default 20000) new root spans the SDK chose to record. Until the first poll
// answers, the sampler is AlwaysOff, so any sampled span shows that Clew's strategy arrived.
import readline from "node:readline";

import { JaegerRemoteSampler } from "@opentelemetry/sampler-jaeger-remote";
import { AlwaysOffSampler, BasicTracerProvider } from "@opentelemetry/sdk-trace-base";

const [endpoint, serviceName, interval = "200"] = process.argv.slice(2);
if (!endpoint || !serviceName) {
  console.error("usage: node check.mjs <sampling url> <service> [polling interval ms]");
  process.exit(2);
}

const sampler = new JaegerRemoteSampler({
  endpoint,
  serviceName,
  poolingInterval: Number(interval),
  initialSampler: new AlwaysOffSampler(),
});
const provider = new BasicTracerProvider({ sampler });
const tracer = provider.getTracer("clew-sampling-check");

function measure(name, roots) {
  let sampled = 0;
  for (let i = 0; i < roots; i++) {
    const span = tracer.startSpan(name);
    if (span.isRecording()) sampled++;
    span.end();
  }
  return { name, roots, sampled, rate: sampled / roots, sampler: sampler.toString() };
}

const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
  const [command, name = "home", roots = "20000"] = line.trim().split(/\s+/);
  if (command !== "measure") {
    console.log(JSON.stringify({ error: `unknown command ${JSON.stringify(command)}` }));
    return;
  }
  console.log(JSON.stringify(measure(name, Number(roots))));
});
input.on("close", () => process.exit(0));
