/**
 * A tracer for in-process tests: keeps every span that ended, with its
 * parent's name, its attributes and how it ended.
 */
import { Effect, Exit, Layer, Option, Tracer } from "effect"

export interface Ended {
  readonly name: string
  readonly parent: string | undefined
  readonly attributes: ReadonlyMap<string, unknown>
  readonly failed: boolean
}

export const collecting = Effect.sync(() => {
  const ended: Array<Ended> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: Math.random().toString(16).slice(2),
        traceId: Option.isSome(parent) ? parent.value.traceId : Math.random().toString(16).slice(2),
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end: (_endTime, exit) =>
          ended.push({
            name,
            parent: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined,
            attributes,
            failed: Exit.isFailure(exit)
          }),
        attribute: (key, value) => attributes.set(key, value),
        event: () => {},
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { ended, layer: Layer.setTracer(tracer) }
})
