/**
 * CRC-32 (IEEE), as nginx's ngx_crc32_* functions compute it, over strings
 * encoded as UTF-8 on the fly (no Buffer per request). `hash` and
 * `hash ... consistent` use it exactly as nginx does, so a key maps to the
 * server nginx would choose for the same upstream.
 */
/*
 * The running state is kept as a signed 32-bit integer (what `^` yields), so
 * V8 keeps it in a register instead of boxing values above 2^31; only
 * crc32Final() turns it into the unsigned result.
 */
const TABLE = new Int32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c | 0;
}

/** ngx_crc32_init (0xffffffff as a signed 32-bit state). */
export const CRC32_INIT = -1;

export function crc32Byte(crc: number, byte: number): number {
  return TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
}

/** ngx_crc32_update with the UTF-8 bytes of `s` (lone surrogates as U+FFFD, like Buffer.from). */
export function crc32String(crc: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      crc = TABLE[(crc ^ c) & 0xff]! ^ (crc >>> 8);
      continue;
    }
    if (c < 0x800) {
      crc = crc32Byte(crc, 0xc0 | (c >> 6));
      crc = crc32Byte(crc, 0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        crc = crc32Byte(crc, 0xf0 | (cp >> 18));
        crc = crc32Byte(crc, 0x80 | ((cp >> 12) & 0x3f));
        crc = crc32Byte(crc, 0x80 | ((cp >> 6) & 0x3f));
        crc = crc32Byte(crc, 0x80 | (cp & 0x3f));
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    crc = crc32Byte(crc, 0xe0 | (c >> 12));
    crc = crc32Byte(crc, 0x80 | ((c >> 6) & 0x3f));
    crc = crc32Byte(crc, 0x80 | (c & 0x3f));
  }
  return crc;
}

/** ngx_crc32_final: the unsigned CRC. */
export function crc32Final(crc: number): number {
  return ~crc >>> 0;
}

/** ngx_crc32_long / ngx_crc32_short: the CRC-32 of a whole string. */
export function crc32(s: string): number {
  return crc32Final(crc32String(CRC32_INIT, s));
}
