import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { isRunning, isZombie } from "../src/util/processes.js"
import * as Zombie from "./support/zombie.js"

describe("process liveness", () => {
  let zombie: Zombie.Zombie
  beforeAll(async () => {
    zombie = await Zombie.make()
  })
  afterAll(() => zombie.reap())

  it("a zombie counts as gone, though kill(pid, 0) still succeeds on it", () => {
    expect(isZombie(zombie.pid)).toBe(true)
    expect(() => process.kill(zombie.pid, 0)).not.toThrow()
    expect(isRunning(zombie.pid)).toBe(false)
  })

  it("a live process runs, and a pid nobody has does not", () => {
    expect(isRunning(process.pid)).toBe(true)
    expect(isZombie(process.pid)).toBe(false)
    expect(isRunning(2 ** 22 + 12345)).toBe(false)
  })
})
