//! Exact division of frame offsets by the frame stride without a divide instruction.
//!
//! `Free` maps a frame address to its index: `(address - base) / stride`, and must know whether
//! the offset is an exact multiple (a pointer into the middle of a frame is a bad free). A
//! hardware 64-bit division costs tens of cycles; with `M = ceil(2^64 / d)` precomputed, for any
//! 32-bit `n` the quotient is the high half of `M * n` and `n` is a multiple of `d` exactly when
//! the low half is below `M` (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
//! 2019). Regions are limited to 4 GiB so offsets fit 32 bits.

/// Divides 32-bit offsets by a fixed divisor.
///
/// # Invariants
///
/// `magic == ceil(2^64 / d)` for the divisor `d`, `2 <= d <= u32::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ExactDivider {
    magic: u64,
}

impl ExactDivider {
    /// A divider by `divisor`; a divisor below 2 is taken as 2 (`2^64 / 1` does not fit the
    /// magic, and frame strides are at least 2).
    pub(crate) const fn new(divisor: u32) -> Self {
        let divisor = if divisor < 2 { 2 } else { divisor as u64 };
        // INVARIANT: u64::MAX / d + 1 == ceil(2^64 / d) for every d >= 2.
        Self { magic: u64::MAX / divisor + 1 }
    }

    /// `(n / divisor, n % divisor == 0)` for any 32-bit `n`.
    #[inline]
    pub(crate) const fn divide(self, n: u32) -> (u32, bool) {
        let n = n as u64;
        let product = self.magic as u128 * n as u128;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the high half of a 64x32 product is < 2^32"
        )]
        let quotient = (product >> 64) as u32;
        #[expect(clippy::cast_possible_truncation, reason = "the low half, on purpose")]
        let low = product as u64;
        (quotient, low < self.magic)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn check(divisor: u64, n: u32) {
        let divider = ExactDivider::new(u32::try_from(divisor).unwrap());
        let expected =
            (u32::try_from(u64::from(n) / divisor).unwrap(), u64::from(n) % divisor == 0);
        assert_eq!(divider.divide(n), expected, "{n} / {divisor}");
    }

    #[test]
    fn matches_hardware_division_on_edges() {
        let divisors = [
            2,
            3,
            7,
            16,
            4096,
            153_600,
            230_400,
            614_400,
            1 << 20,
            0x7FFF_FFFF,
            u64::from(u32::MAX),
        ];
        for divisor in divisors {
            for k in [0u64, 1, 2, 3, 100, 1000] {
                for delta in [-1i64, 0, 1] {
                    let n = (k * divisor).saturating_add_signed(delta);
                    if let Ok(n) = u32::try_from(n) {
                        check(divisor, n);
                    }
                }
            }
            check(divisor, u32::MAX);
        }
        assert_eq!(ExactDivider::new(0), ExactDivider::new(2));
        assert_eq!(ExactDivider::new(1), ExactDivider::new(2));
    }

    #[test]
    fn matches_hardware_division_on_a_sweep() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Fewer under Miri, which interprets every instruction.
        for _ in 0..if cfg!(miri) { 2_000 } else { 200_000 } {
            let divisor = next() % (u64::from(u32::MAX) - 1) + 2;
            let divisor = if next() % 2 == 0 { divisor % 70_000 + 2 } else { divisor };
            #[expect(clippy::cast_possible_truncation, reason = "a random 32-bit value")]
            let n = next() as u32;
            check(divisor, n);
            check(divisor, n - n % u32::try_from(divisor).unwrap_or(u32::MAX).max(1));
        }
    }
}
