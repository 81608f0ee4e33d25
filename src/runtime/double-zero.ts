/**
 * Zero, stored so that V8 keeps the field a double from the start.
 *
 * V8 gives an object field the representation of the first value stored in
 * it: `= 0` makes it a small integer (Smi). The first fractional or large
 * value stored later (a performance.now() timestamp, an EWMA, a byte count
 * past 2^31) changes the field to a double, which gives every object of that
 * class a new hidden class and throws away all optimized code that relied on
 * the old one. For a field first written on a rare event, that happens in the
 * middle of live traffic: ServerState.checked is first set when the first
 * fail_timeout window ends, 10 s after start, and took a dozen hot functions
 * (balancing, the exchange, the turn's writes) back to the interpreter and
 * through TurboFan again on the proxy's own core (docs/benchmarks.md, "JIT
 * stability").
 *
 * -0 is not a Smi, so a field initialized with it is a double at once; it is
 * `=== 0`, prints as "0" and serializes as 0.
 */
export const DOUBLE_ZERO = -0;
