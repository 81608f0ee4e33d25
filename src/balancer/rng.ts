/**
 * Random numbers for the random policies. Production uses Math.random; tests
 * and the benchmark pass a seeded generator so pick orders can be pinned.
 */
export type Random = () => number;

/** mulberry32: a small, fast, seedable generator with a full 2^32 period. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
