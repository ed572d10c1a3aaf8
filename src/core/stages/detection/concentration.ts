/**
 * How compact a reversed mask is: the share of its L1 mass inside the best square window whose area is
 * about twice the mask's mass (side ⌈√(2·mass)⌉). A planted patch, sticker or pixel cluster reverses to a
 * compact blob (close to 1); the small triggers some clean classes have naturally are strokes and outlines
 * of the class's shape, spread over the image.
 */
export function concentration(mask: ArrayLike<number>, h: number, w: number): number {
  let mass = 0;
  for (let i = 0; i < h * w; i++) mass += mask[i]!;
  if (!(mass > 0)) return 0;
  const side = Math.min(h, w, Math.max(1, Math.ceil(Math.sqrt(2 * mass))));
  // Summed-area table: any window's sum in four reads.
  const sat = new Float64Array((h + 1) * (w + 1));
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      row += mask[y * w + x]!;
      sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1]! + row;
    }
  }
  let best = 0;
  for (let y = 0; y + side <= h; y++) {
    for (let x = 0; x + side <= w; x++) {
      const a = (y + side) * (w + 1) + x + side;
      const sum = sat[a]! - sat[y * (w + 1) + x + side]! - sat[(y + side) * (w + 1) + x]! + sat[y * (w + 1) + x]!;
      if (sum > best) best = sum;
    }
  }
  return best / mass;
}
