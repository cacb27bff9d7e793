//! Deterministic synthetic data for the Sandbox demo and tests.
//!
//! The residents of a city's districts: resident ID numbers with valid GB 11643 check
//! characters, mobile numbers, ages and incomes. Everything is drawn from a seeded
//! ChaCha generator, so the same seed gives the same bytes on every machine. None of it
//! describes a real person.

#![forbid(unsafe_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The districts of the demo city, with their six-digit area codes and income levels.
pub const DISTRICTS: &[(&str, &str, f64)] = &[
    ("heping", "120101", 1.35),
    ("hedong", "120102", 0.95),
    ("hexi", "120103", 1.15),
    ("nankai", "120104", 1.10),
    ("hebei", "120105", 0.85),
    ("hongqiao", "120106", 0.80),
];

/// The GB 11643 check character of the first 17 digits.
pub fn id_check_char(first17: &[u8; 17]) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

/// A resident ID number for an area, birth date and sequence number.
pub fn resident_id(area: &str, year: u32, month: u32, day: u32, seq: u32) -> String {
    let body = format!("{area}{year:04}{month:02}{day:02}{:03}", seq % 1000);
    let mut first17 = [b'0'; 17];
    first17.copy_from_slice(&body.as_bytes()[..17]);
    format!("{body}{}", id_check_char(&first17))
}

/// One synthetic resident.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    /// Resident ID number (the privacy unit).
    pub citizen_id: String,
    /// Mobile number.
    pub phone: String,
    /// District.
    pub district: String,
    /// Age in years.
    pub age: u32,
    /// Yearly income in yuan.
    pub income: f64,
}

/// `n` residents drawn with `seed`.
pub fn residents(n: usize, seed: u64) -> Vec<Resident> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (district, area, level) = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
        let age: u32 = rng.random_range(18..=90);
        let year = 2026 - age;
        let month = rng.random_range(1..=12);
        let day = rng.random_range(1..=28);
        let citizen_id = resident_id(area, year, month, day, i as u32);
        let phone = format!(
            "1{}{:09}",
            [3, 5, 7, 8, 9][rng.random_range(0..5)],
            rng.random_range(0..1_000_000_000u64)
        );
        // A right-skewed income: most near the district's level, a long upper tail.
        let u: f64 = rng.random_range(0.0..1.0);
        let working = (22..=62).contains(&age);
        let base = if working { 48_000.0 } else { 26_000.0 };
        let income = (base * level * (0.35 + 2.2 * u * u)).round();
        out.push(Resident {
            citizen_id,
            phone,
            district: district.to_string(),
            age,
            income,
        });
    }
    out
}

/// The residents as CSV with a header row.
pub fn residents_csv(n: usize, seed: u64) -> String {
    let mut s = String::from("citizen_id,phone,district,age,income\n");
    for r in residents(n, seed) {
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            r.citizen_id, r.phone, r.district, r.age, r.income
        ));
    }
    s
}

/// One row of the PUMS sample: age, sex, educ, race, income, married.
pub type PumsRow = [String; 6];

/// Reads the rows of a PUMS CSV (`age,sex,educ,race,income,married[,pid]`), dropping `pid`.
pub fn read_pums(text: &str) -> Vec<PumsRow> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() < 6 {
                return None;
            }
            Some([
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
                f[4].trim_end_matches(".0").to_string(),
                f[5].to_string(),
            ])
        })
        .collect()
}

/// Writes `n` PUMS-like rows resampled (with replacement, seeded) from `source`, with
/// fresh person ids. With `rows_per_person` above 1, each person gets between 1 and that
/// many rows, so that per-person bounding has work to do.
pub fn write_pums_like(
    out: &mut impl std::io::Write,
    source: &[PumsRow],
    n: usize,
    rows_per_person: usize,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    writeln!(out, "age,sex,educ,race,income,married,pid")?;
    if source.is_empty() {
        return Ok(());
    }
    let mut pid = 0u64;
    let mut left = 0usize;
    for _ in 0..n {
        if left == 0 {
            pid += 1;
            left = rng.random_range(1..=rows_per_person.max(1));
        }
        left -= 1;
        let r = &source[rng.random_range(0..source.len())];
        writeln!(
            out,
            "{},{},{},{},{},{},{pid}",
            r[0], r[1], r[2], r[3], r[4], r[5]
        )?;
    }
    Ok(())
}

/// Synthetic taxi trips of `vehicles` vehicles (1 to 6 trips each), drawn with `seed`, as
/// CSV with a header row: `plate,district,hour,minutes,fare`. Trips cluster around the
/// morning (8:00) and evening (18:00) peaks.
pub fn trips_csv(vehicles: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::from("plate,district,hour,minutes,fare\n");
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    for v in 0..vehicles {
        let plate = format!(
            "津{}{:05}",
            LETTERS[rng.random_range(0..LETTERS.len())] as char,
            v % 100_000
        );
        for _ in 0..rng.random_range(1..=6) {
            let (district, _, _) = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
            let u: f64 = rng.random_range(0.0..1.0);
            let hour: i64 = if u < 0.3 {
                (8.0 + rng.random_range(-1.5..1.5_f64)).round() as i64
            } else if u < 0.6 {
                (18.0 + rng.random_range(-1.5..1.5_f64)).round() as i64
            } else {
                rng.random_range(0..24)
            };
            let minutes: i64 = rng.random_range(5..=75);
            let fare = (13.0 + minutes as f64 * 1.6).round();
            s.push_str(&format!(
                "{plate},{district},{},{minutes},{fare}\n",
                hour.clamp(0, 23)
            ));
        }
    }
    s
}

/// Industries of the synthetic enterprise register.
pub const INDUSTRIES: &[&str] = &[
    "manufacturing",
    "wholesale_retail",
    "information_technology",
    "construction",
    "catering",
    "logistics",
];

/// `n` synthetic enterprises drawn with `seed`, as CSV with a header row:
/// `credit_code,name,industry,registered_on,capital,employees`. Registration dates run
/// from 2015 to 2025, with more information-technology firms in later years.
pub fn enterprises_csv(n: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::from("credit_code,name,industry,registered_on,capital,employees\n");
    for i in 0..n {
        let year: u32 = rng.random_range(2015..=2025);
        let industry = if rng.random_range(0.0..1.0) < f64::from(year - 2014) / 40.0 {
            "information_technology"
        } else {
            INDUSTRIES[rng.random_range(0..INDUSTRIES.len())]
        };
        let month = rng.random_range(1..=12);
        let day = rng.random_range(1..=28);
        let capital = (rng.random_range(0.0..1.0_f64).powi(3) * 5.0e7).round();
        let employees: u32 = rng.random_range(1..=500);
        s.push_str(&format!(
            "91120000MA{i:07}X,Enterprise {i},{industry},{year}-{month:02}-{day:02},{capital},{employees}\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic() {
        assert_eq!(residents_csv(50, 7), residents_csv(50, 7));
        assert_ne!(residents_csv(50, 7), residents_csv(50, 8));
    }

    #[test]
    fn ids_have_valid_check_characters() {
        for r in residents(200, 1) {
            let id = r.citizen_id.as_bytes();
            assert_eq!(id.len(), 18);
            let mut first17 = [0u8; 17];
            first17.copy_from_slice(&id[..17]);
            assert_eq!(id_check_char(&first17), id[17] as char);
        }
        // The published sample number.
        assert_eq!(id_check_char(b"11010519491231002"), 'X');
    }
}
