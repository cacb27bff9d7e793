//! Sums are exact: the total does not depend on the order of the rows, and one unit moves
//! it by exactly what that unit adds, so the sensitivity the noise is calibrated to holds
//! for the arithmetic the engine does. Float accumulation breaks both (Casacuberta et al.
//! 2022, "Widespread underestimation of sensitivity in differentially private libraries"):
//! on the data below a float sum in file order is 4 instead of 1,002, and leaving out the
//! unit that adds 2 moves it by 4. Threshold mode releases exact sums, so the test reads
//! the very aggregate the noise would be added to.

use sandbox_runtime::catalog;
use sandbox_runtime::mediate::{self, QueryRequest};
use sandbox_tests::{DEVELOPER, PROVIDER, empty_domain};

/// The policy of `x`: one group, a value `v` with `bounds`, no dominance or p% rule (so
/// every cell of 10 units or more is released exactly).
fn policy(bounds: &str) -> String {
    sandbox_tests::test_policy(
        "x",
        "threshold",
        &format!(
            r#"
[[column]]
name = "g"
level = 2
access = "group"
categories = ["a"]
description = "Group"

[[column]]
name = "v"
level = 3
access = "aggregate"
bounds = {bounds}
description = "A value"

[disclosure]
min_group_size = 10
p_ratio = 0.0

[disclosure.dominance]
n = 2
k = 1.0
"#
        ),
    )
}

/// The exact SUM of `v` over the rows, in this order, as threshold mode releases it.
fn released_sum(values: &[f64]) -> f64 {
    released_sum_within(values, "[-9007199254740992, 9007199254740992]")
}

/// [`released_sum`] with `v`'s bounds.
fn released_sum_within(values: &[f64], bounds: &str) -> f64 {
    let (dir, domain) = empty_domain();
    let mut csv = String::from("id,g,v\n");
    for (i, v) in values.iter().enumerate() {
        csv.push_str(&format!("u{i},a,{v}\n"));
    }
    let path = dir.path().join("x.csv");
    std::fs::write(&path, csv).unwrap();
    catalog::add(&domain, PROVIDER, &path, &policy(bounds)).unwrap();
    let id =
        sandbox_tests::approved_scenario(&domain, "sums", "x", &["id", "g", "v"], "threshold", 1.0);
    let a = mediate::answer(
        &domain,
        &QueryRequest {
            scenario_id: id,
            job_id: None,
            actor: DEVELOPER,
            sql: "SELECT SUM(v) AS s FROM x",
            epsilon: None,
        },
    )
    .unwrap();
    let column =
        arrow::compute::cast(a.batch.column(0), &arrow::datatypes::DataType::Float64).unwrap();
    column
        .as_any()
        .downcast_ref::<arrow::array::Float64Array>()
        .unwrap()
        .value(0)
}

#[test]
fn sums_are_exact_whatever_the_order_and_one_unit_moves_them_by_its_value() {
    let big = 9_007_199_254_740_992.0; // 2^53, the bound
    let ones = std::iter::repeat_n(1.0, 1000);
    // 2^53 + 2 + 1 + 1 + ... - 2^53: each 1 is lost to rounding in float order.
    let forward: Vec<f64> = [big, 2.0]
        .into_iter()
        .chain(ones.clone())
        .chain([-big])
        .collect();
    let mut backward = forward.clone();
    backward.reverse();
    let without_two: Vec<f64> = [big].into_iter().chain(ones).chain([-big]).collect();
    // What float accumulation in file order gives, for the record.
    let float_sum = |xs: &[f64]| xs.iter().fold(0.0, |s, x| s + x);
    assert_eq!(float_sum(&forward), 4.0);
    assert_eq!(float_sum(&without_two), 0.0);

    let s = released_sum(&forward);
    assert_eq!(s, 1002.0, "the exact total");
    assert_eq!(released_sum(&backward), s, "whatever the order");
    // The neighbour without the unit that adds 2: the total moves by exactly 2, within
    // the sensitivity (the bound) and equal to what the unit adds.
    assert_eq!(s - released_sum(&without_two), 2.0);
}

/// Small bounds take the 64-bit path (values rounded to 6 decimals, added as integers):
/// decimals no float holds exactly sum to the same total in either order, the exact one.
#[test]
fn decimals_sum_exactly_in_either_order() {
    let forward: Vec<f64> = (1..=1000)
        .map(|i| {
            let x = f64::from(i) * 0.1 + f64::from(i % 7) * 1e-6;
            let x = if i % 50 == 0 { x + 999.0 } else { x };
            (x * 1e6).round() / 1e6
        })
        .collect();
    let mut backward = forward.clone();
    backward.reverse();
    let float_sum = |xs: &[f64]| xs.iter().fold(0.0, |s, x| s + x);
    assert_ne!(
        float_sum(&forward),
        float_sum(&backward),
        "floats disagree by order"
    );
    let s = released_sum_within(&forward, "[-2000, 2000]");
    assert_eq!(s, 70_030.003003);
    assert_eq!(released_sum_within(&backward, "[-2000, 2000]"), s);
}
