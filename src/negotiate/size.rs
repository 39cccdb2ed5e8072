//! Frame-size arithmetic of the negotiation: the sizes a framing range allows, the smallest size
//! two ranges share (exactly, steppings included), and the upstream pin's sizes seen through its
//! output compression.

use crate::framing::{Compression, FramingRange};

/// The sizes a range allows: `min + k * step <= max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Grid {
    pub(super) min: u64,
    pub(super) max: u64,
    pub(super) step: u64,
}

impl Grid {
    pub(super) fn of(range: FramingRange) -> Self {
        Self {
            min: u64::from(range.min_frame_size),
            max: u64::from(range.max_frame_size),
            step: u64::from(range.effective_stepping()),
        }
    }

    pub(super) fn contains(self, size: u64) -> bool {
        size >= self.min && size <= self.max && (size - self.min).is_multiple_of(self.step)
    }

    pub(super) fn is_dont_care(self) -> bool {
        self.min == 0 && self.max == u64::from(u32::MAX)
    }

    /// The sizes both grids allow, as a grid (the intersection of two arithmetic progressions
    /// is one: from the smallest common size, every least common multiple of the steps), or
    /// `None` when they share none.
    pub(super) fn intersect(self, other: Grid) -> Option<Grid> {
        let min = smallest_common(self, other, 0)?;
        let max = self.max.min(other.max);
        let lcm = u128::from(self.step / gcd(self.step, other.step)) * u128::from(other.step);
        // A step past the end leaves `min` the only size.
        let step = u64::try_from(lcm).unwrap_or(u64::MAX).min(max - min + 1).max(1);
        Some(Grid { min, max, step })
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `m` (`a` and `m` coprime, `m >= 1`).
#[expect(clippy::many_single_char_names, reason = "the extended Euclidean algorithm's usual names")]
fn inverse(a: u64, m: u64) -> u64 {
    let (mut old_r, mut r) = (i128::from(a % m), i128::from(m));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    let m = i128::from(m);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "reduced modulo m <= u64::MAX"
    )]
    let inverse = (((old_s % m) + m) % m) as u64;
    inverse
}

/// The smallest size at least `floor` that both grids allow (exact, by the Chinese remainder
/// theorem), or `None`.
#[expect(clippy::many_single_char_names, reason = "the Chinese remainder theorem's usual names")]
pub(super) fn smallest_common(a: Grid, b: Grid, floor: u64) -> Option<u64> {
    let lo = a.min.max(b.min).max(floor);
    let hi = a.max.min(b.max);
    if lo > hi {
        return None;
    }
    let g = gcd(a.step, b.step);
    let diff = i128::from(b.min) - i128::from(a.min);
    if diff % i128::from(g) != 0 {
        return None;
    }
    // x = a.min + a.step * t with a.step * t ≡ diff (mod b.step).
    let (p, q) = (a.step / g, b.step / g);
    let rhs = (diff / i128::from(g)).rem_euclid(i128::from(q));
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "reduced modulo q")]
    let t = ((rhs as u128 * u128::from(inverse(p, q))) % u128::from(q)) as u64;
    let lcm = u128::from(a.step) * u128::from(q);
    let x0 = u128::from(a.min) + u128::from(a.step) * u128::from(t);
    // The smallest x ≡ x0 (mod lcm) with x >= lo.
    let lo = u128::from(lo);
    let x = if x0 >= lo { x0 - (x0 - lo) / lcm * lcm } else { x0 + (lo - x0).div_ceil(lcm) * lcm };
    let x = u64::try_from(x).ok()?;
    (x <= hi).then_some(x)
}

/// The legal sizes of the upstream range on the connection, through the output compression.
#[derive(Clone, Copy, Debug)]
pub(super) struct Upstream {
    pub(super) grid: Grid,
    pub(super) compression: Compression,
    pub(super) insist: bool,
}

/// Most upstream sizes tried when a compression ratio must be kept exactly.
const RATIO_SEARCH: u64 = 1 << 16;

impl Upstream {
    fn identity(self) -> bool {
        self.compression.is_identity()
    }

    /// The connection size for an upstream size; sizes beyond 32 bits saturate.
    pub(super) fn scale(self, size: u64) -> Option<u64> {
        let size = u32::try_from(size).ok()?;
        Some(self.compression.apply(size).map_or(u64::from(u32::MAX), u64::from))
    }

    /// The smallest connection size at least `floor` within `bounds` that this side allows and
    /// `downstream` allows.
    pub(super) fn smallest_common(
        self,
        downstream: Grid,
        bounds: (u64, u64),
        floor: u64,
    ) -> Option<u64> {
        let floor = floor.max(bounds.0);
        let clamp = |size: u64| (size <= bounds.1).then_some(size);
        if self.identity() {
            return smallest_common(self.grid, downstream, floor).and_then(clamp);
        }
        if !self.insist {
            let (lo, hi) = (self.scale(self.grid.min)?, self.scale(self.grid.max)?);
            let mapped = Grid { min: lo, max: hi, step: 1 };
            return smallest_common(mapped, downstream, floor).and_then(clamp);
        }
        // Kept exactly: walk the upstream sizes whose image can reach `floor`.
        let c = self.compression;
        let need = floor.saturating_sub(u64::from(c.constant_margin));
        let start = (need.saturating_mul(u64::from(c.denominator)) / u64::from(c.numerator.max(1)))
            .max(self.grid.min);
        let steps_in = (start - self.grid.min) / self.grid.step;
        let mut size = self.grid.min + steps_in * self.grid.step;
        for _ in 0..RATIO_SEARCH {
            if size > self.grid.max {
                return None;
            }
            let image = self.scale(size)?;
            if image > bounds.1 || image > downstream.max {
                return None;
            }
            if image >= floor && downstream.contains(image) {
                return Some(image);
            }
            size += self.grid.step;
        }
        None
    }

    /// Bounds of the connection sizes this range allows.
    pub(super) fn bounds(self) -> Option<(u64, u64)> {
        Some((self.scale(self.grid.min)?, self.scale(self.grid.max)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(min: u64, max: u64, step: u64) -> Grid {
        Grid { min, max, step }
    }

    #[test]
    fn smallest_common_is_exact() {
        assert_eq!(smallest_common(grid(0, 100, 1), grid(10, 20, 1), 1), Some(10));
        assert_eq!(smallest_common(grid(0, 100, 4), grid(0, 100, 6), 1), Some(12));
        assert_eq!(smallest_common(grid(1, 100, 4), grid(3, 100, 6), 1), Some(9));
        assert_eq!(
            smallest_common(grid(0, 100, 4), grid(1, 100, 4), 1),
            None,
            "parities never meet"
        );
        assert_eq!(smallest_common(grid(0, 10, 4), grid(0, 10, 6), 1), None, "12 is past the end");
        assert_eq!(
            smallest_common(grid(0, u64::from(u32::MAX), 1), grid(0, u64::from(u32::MAX), 1), 1),
            Some(1)
        );
        // Intersections, by brute force over small grids.
        for (a0, a1, a2) in [(0, 60, 3), (5, 50, 7), (2, 90, 10), (0, 30, 1), (0, 100, 256)] {
            for (b0, b1, b2) in [(1, 70, 2), (4, 80, 9), (0, 64, 8), (7, 7, 1), (0, 99, 511)] {
                let (a, b) = (grid(a0, a1, a2), grid(b0, b1, b2));
                let meet = a.intersect(b);
                for x in 0..=100 {
                    let both = a.contains(x) && b.contains(x);
                    assert_eq!(meet.is_some_and(|g| g.contains(x)), both, "{a:?} {b:?} at {x}");
                }
            }
        }
        // Brute force over small grids.
        for (a0, a1, a2) in [(0, 60, 3), (5, 50, 7), (2, 90, 10), (0, 30, 1)] {
            for (b0, b1, b2) in [(1, 70, 2), (4, 80, 9), (0, 64, 8), (7, 7, 1)] {
                let (a, b) = (grid(a0, a1, a2), grid(b0, b1, b2));
                let brute = (1..=100).find(|x| a.contains(*x) && b.contains(*x));
                assert_eq!(smallest_common(a, b, 1), brute, "{a:?} {b:?}");
            }
        }
    }
}
