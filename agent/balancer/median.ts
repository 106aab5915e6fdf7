// The median of a list of numbers in linear time: a new endpoint's first latency estimate, over services of any size.

/**
 * The median of `values[0..count)` (the mean of the two middle ones when `count` is even), reordering them. A
 * selection in place, expected O(count): sorting 10,000 estimates for every new endpoint cost about a millisecond.
 * `count` must be at least 1.
 */
export function medianInPlace(values: Float64Array, count: number): number {
  const middle = count >> 1;
  select(values, 0, count - 1, middle);
  if (count % 2 === 1) return values[middle];
  // After the selection everything before `middle` is ≤ it: the other middle value is the largest of those.
  let below = values[0];
  for (let i = 1; i < middle; i++) if (values[i] > below) below = values[i];
  return (below + values[middle]) / 2;
}

/** Moves the k-th smallest of values[left..right] to index k, smaller ones before it, larger ones after. */
function select(values: Float64Array, left: number, right: number, k: number): void {
  while (right > left) {
    // Median of three as the pivot: sorted or reversed input stays linear.
    const mid = (left + right) >>> 1;
    if (values[mid] < values[left]) swap(values, mid, left);
    if (values[right] < values[left]) swap(values, right, left);
    if (values[right] < values[mid]) swap(values, right, mid);
    const pivot = values[mid];
    let i = left;
    let j = right;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        swap(values, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return;
  }
}

function swap(values: Float64Array, a: number, b: number): void {
  const t = values[a];
  values[a] = values[b];
  values[b] = t;
}
