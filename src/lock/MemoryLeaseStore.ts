/**
 * Leases in memory, timed by `Clock`, for simulating the lease logic under
 * `TestClock`. Behaves like the PostgreSQL store: the contract suite checks both.
 */
import { Clock, Duration, Effect, Layer, Option, Ref } from "effect"
import { FencedOut, type HolderInfo } from "./errors.js"
import { LeaseStore, type LeaseRow } from "./LeaseStore.js"
import { mayTakeOver } from "./LeaseTimings.js"

interface StoredLease extends HolderInfo {
  readonly token: number
  readonly acquiredAt: number
  readonly heartbeatAt: number
  readonly expiresAt: number
}

export const layer: Layer.Layer<LeaseStore> = Layer.effect(
  LeaseStore,
  Effect.gen(function* () {
    const leases = yield* Ref.make(new Map<string, StoredLease>())
    const lastToken = yield* Ref.make(0)

    const toRow = (name: string, lease: StoredLease, now: number): LeaseRow => ({
      name,
      holder: lease.holder,
      host: lease.host,
      pid: lease.pid,
      token: lease.token,
      ageMillis: now - lease.acquiredAt,
      sinceHeartbeatMillis: now - lease.heartbeatAt,
      expiresInMillis: lease.expiresAt - now
    })

    const store = LeaseStore.of({
      tryAcquire: (name, holder, ttl) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const existing = (yield* Ref.get(leases)).get(name)
          if (existing !== undefined && !mayTakeOver(existing.expiresAt, now)) {
            return { _tag: "Busy", current: toRow(name, existing, now) } as const
          }
          const token = yield* Ref.updateAndGet(lastToken, (n) => n + 1)
          const lease = { ...holder, token, acquiredAt: now, heartbeatAt: now, expiresAt: now + Duration.toMillis(ttl) }
          yield* Ref.update(leases, (map) => new Map(map).set(name, lease))
          return { _tag: "Granted", token } as const
        }),
      takeOver: (name, from, holder, ttl) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const existing = (yield* Ref.get(leases)).get(name)
          if (existing === undefined || existing.holder !== from.holder || existing.token !== from.token) {
            return Option.none()
          }
          const token = yield* Ref.updateAndGet(lastToken, (n) => n + 1)
          const lease = { ...holder, token, acquiredAt: now, heartbeatAt: now, expiresAt: now + Duration.toMillis(ttl) }
          yield* Ref.update(leases, (map) => new Map(map).set(name, lease))
          return Option.some(token)
        }),
      renew: (name, holder, token, ttl) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const existing = (yield* Ref.get(leases)).get(name)
          if (existing === undefined) return "released" as const
          if (existing.holder !== holder || existing.token !== token) return "taken-over" as const
          const renewed = { ...existing, heartbeatAt: now, expiresAt: now + Duration.toMillis(ttl) }
          yield* Ref.update(leases, (map) => new Map(map).set(name, renewed))
          return "renewed" as const
        }),
      release: (name, holder, token) =>
        Ref.modify(leases, (map) => {
          const existing = map.get(name)
          if (existing === undefined || existing.holder !== holder || existing.token !== token) return [false, map]
          const next = new Map(map)
          next.delete(name)
          return [true, next]
        }),
      list: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const map = yield* Ref.get(leases)
        return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, lease]) => toRow(name, lease, now))
      }),
      find: (name) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const existing = (yield* Ref.get(leases)).get(name)
          return existing === undefined ? Option.none() : Option.some(toRow(name, existing, now))
        }),
      forceRelease: (name) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          return yield* Ref.modify(leases, (map) => {
            const existing = map.get(name)
            if (existing === undefined) return [Option.none(), map]
            const next = new Map(map)
            next.delete(name)
            return [Option.some(toRow(name, existing, now)), next]
          })
        }),
      fence: (name, token) =>
        Effect.flatMap(Ref.get(leases), (map) => {
          const currentToken = map.get(name)?.token ?? null
          return currentToken === token ? Effect.void : Effect.fail(new FencedOut({ name, token, currentToken }))
        })
    })
    return store
  })
)
