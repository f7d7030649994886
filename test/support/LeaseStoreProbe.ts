/**
 * Wraps any LeaseStore for the simulations: records each renewal's outcome in
 * a queue (so a test can wait for real I/O to finish after moving the
 * TestClock), and can make renewals fail as a dropped connection would.
 */
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer, Queue, Ref } from "effect"
import { LeaseStore } from "../../src/lock/LeaseStore.js"

export type RenewalOutcome = "renewed" | "refused" | "failed"

export interface Probe {
  readonly renewals: Queue.Queue<RenewalOutcome>
  readonly failRenewals: Ref.Ref<boolean>
}

const dropped = new SqlError({ cause: new Error("Connection terminated unexpectedly"), message: "injected failure" })

export const probed = (probe: Probe) =>
  Layer.effect(
    LeaseStore,
    Effect.map(LeaseStore, (store) =>
      LeaseStore.of({
        ...store,
        renew: (name, holder, token, ttl) =>
          Ref.get(probe.failRenewals).pipe(
            Effect.flatMap((fail) => (fail ? Effect.fail(dropped) : store.renew(name, holder, token, ttl))),
            Effect.tapBoth({
              onFailure: () => Queue.offer(probe.renewals, "failed"),
              onSuccess: (outcome) => Queue.offer(probe.renewals, outcome === "renewed" ? "renewed" : "refused")
            })
          )
      })
    )
  )

export const makeProbe = Effect.all({ renewals: Queue.unbounded<RenewalOutcome>(), failRenewals: Ref.make(false) })
