//! Median and spread of per-round figures, and ratios taken within each round (so slow drift
//! of a shared machine hits a configuration and its baseline alike).

/// Median, minimum and maximum of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for an empty sample. The median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Whether `x` lies within min–max.
    pub fn contains(&self, x: f64) -> bool {
        self.min <= x && x <= self.max
    }

    /// (max − min) / median: how far apart the rounds were.
    pub fn relative_width(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

/// `value[i] / base[i]` round by round (rounds missing from either side are skipped).
pub fn ratios(values: &[f64], base: &[f64]) -> Vec<f64> {
    values.iter().zip(base).map(|(v, b)| v / b).collect()
}

/// `value[i] - base[i]` round by round.
pub fn differences(values: &[f64], base: &[f64]) -> Vec<f64> {
    values.iter().zip(base).map(|(v, b)| v - b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample and its (median, min, max).
    type Case = (&'static [f64], Option<(f64, f64, f64)>);

    #[test]
    fn spread_of_samples() {
        let cases: &[Case] = &[
            (&[], None),
            (&[3.0], Some((3.0, 3.0, 3.0))),
            (&[5.0, 1.0, 3.0], Some((3.0, 1.0, 5.0))),
            (&[4.0, 1.0, 2.0, 10.0], Some((3.0, 1.0, 10.0))),
        ];
        for (values, want) in cases {
            let got = Spread::of(values).map(|s| (s.median, s.min, s.max));
            assert_eq!(got, *want, "{values:?}");
        }
    }

    #[test]
    fn ratios_and_differences_pair_rounds() {
        assert_eq!(ratios(&[110.0, 90.0], &[100.0, 100.0]), vec![1.1, 0.9]);
        assert_eq!(
            differences(&[110.0, 90.0, 7.0], &[100.0, 100.0]),
            vec![10.0, -10.0]
        );
        let s = Spread::of(&ratios(&[98.0, 101.0, 99.0], &[100.0, 100.0, 100.0])).unwrap();
        assert!(s.contains(1.0) && !s.contains(1.02));
        assert!((s.relative_width() - 0.03 / 0.99).abs() < 1e-9);
    }
}
