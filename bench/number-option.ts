// A numeric command-line option of a benchmark: its fallback when absent, a clear error when out of range.

export function numberOption(value: string | undefined, fallback: number, name: string, range: { min: number; max: number; integer?: boolean }): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  const integer = range.integer ?? false;
  if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < range.min || n > range.max) {
    throw new Error(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${range.min} to ${range.max}, got ${value}`);
  }
  return n;
}
