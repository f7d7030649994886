/**
 * Holding a sync still at a chosen point, so that a test acts at an
 * observable moment instead of racing the machine's speed: a key held by an
 * uncommitted row makes the batch that writes it wait, and a table lock makes
 * any query on the table wait, until the test lets go.
 */
import pg from "pg"

export interface Held {
  readonly release: () => Promise<void>
}

const holding = async (url: string, statements: ReadonlyArray<readonly [string, Array<unknown>]>): Promise<Held> => {
  const client = new pg.Client({ connectionString: url, application_name: "test:block" })
  await client.connect()
  await client.query("BEGIN")
  for (const [text, values] of statements) await client.query(text, values)
  let released = false
  return {
    release: async () => {
      if (released) return
      released = true
      await client.query("ROLLBACK")
      await client.end()
    }
  }
}

/** An uncommitted document at (sourceId, key): the sync's batch that inserts the key waits for `release`. */
export const blockKey = (url: string, sourceId: string, key: string): Promise<Held> =>
  holding(url, [
    [
      "INSERT INTO tidemark.documents (source_id, key, version, size, content) VALUES ($1, $2, 'held by a test', 0, '')",
      [sourceId, key]
    ]
  ])

/** `tidemark.documents` locked against everything, reads included, until `release`. */
export const lockDocuments = (url: string): Promise<Held> =>
  holding(url, [["LOCK TABLE tidemark.documents IN ACCESS EXCLUSIVE MODE", []]])

const pause = () => new Promise((resolve) => setTimeout(resolve, 20))

/** The backend pids of tidemark's main pool (of this database) that wait on a lock held by a test. */
export const waitingBackends = async (url: string): Promise<ReadonlyArray<number>> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'tidemark:main' AND wait_event_type = 'Lock'`
    )
    return rows.map((r) => r.pid)
  } finally {
    await client.end()
  }
}

/** Resolves with the waiting backends once a tidemark main-pool query waits on a lock; rejects if `alive` turns false first. */
export const untilWaiting = async (url: string, alive: () => boolean = () => true): Promise<ReadonlyArray<number>> => {
  for (;;) {
    const waiting = await waitingBackends(url)
    if (waiting.length > 0) return waiting
    if (!alive()) throw new Error("the process exited before it waited on the held lock")
    await pause()
  }
}

/** Polls `check` until it holds (an observable event), failing if `alive` turns false first. */
export const until = async (check: () => Promise<boolean>, alive: () => boolean = () => true): Promise<void> => {
  for (;;) {
    if (await check()) return
    if (!alive()) throw new Error("the process exited before the awaited event")
    await pause()
  }
}
