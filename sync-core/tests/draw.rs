//! The random inspection draw: the stream against RFC 8439, the rules every draw keeps (P1, P4,
//! the per-officer limit, the tier quotas), determinism, the seed's dependence on every input,
//! uniformity (chi-squared over a fixed list of seeds), the shared synthetic city, and a golden
//! draw frozen in `tests/data/draw-v1.json`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use sync_core::draw::{Campaign, Draw, DrawError, DrawInputs, EligibleEntity, Quota, Stream, TierQuota, draw, seed};

fn campaign(tiers: Vec<(&str, Quota)>, team_size: u32, max_tasks: u32) -> Campaign {
    Campaign {
        campaign_id: "C2026Q4-01".into(),
        matter: "M01".into(),
        period: "2026-Q4".into(),
        tiers: tiers.into_iter().map(|(tier, quota)| TierQuota { tier: tier.into(), quota }).collect(),
        team_size,
        max_tasks_per_officer: max_tasks,
    }
}

/// A city of `entities` entities over three tiers, `officers` officers, and recusals.
fn city(entities: usize, officers: usize, recusals: &[(usize, usize)], server_seed: [u8; 32]) -> DrawInputs {
    let tiers = ["special", "key", "general"];
    DrawInputs {
        campaign: campaign(
            vec![
                ("special", Quota::PerMille { per_mille: 1000 }),
                ("key", Quota::PerMille { per_mille: 250 }),
                ("general", Quota::Count { count: 1 }),
            ],
            2,
            3,
        ),
        entities: (0..entities)
            .map(|i| EligibleEntity { entity_id: format!("E{i:05}"), tier: tiers[i % 3].into() })
            .collect(),
        officers: (0..officers).map(|i| format!("O{i:04}")).collect(),
        recusals: recusals.iter().map(|(o, e)| (format!("O{o:04}"), format!("E{e:05}"))).collect(),
        server_seed,
        public_value: String::new(),
    }
}

/// Every rule a draw keeps: teams of the campaign's size (at least two, P1) of distinct eligible
/// officers, none recused (P4), none over the limit, each tier drawn to its quota, no entity twice.
fn check_rules(inputs: &DrawInputs, draw: &Draw) {
    let recused: BTreeSet<(&str, &str)> = inputs.recusals.iter().map(|(o, e)| (o.as_str(), e.as_str())).collect();
    let officers: BTreeSet<&str> = inputs.officers.iter().map(String::as_str).collect();
    let mut load: BTreeMap<&str, u32> = BTreeMap::new();
    let mut drawn = BTreeSet::new();
    for task in &draw.tasks {
        assert!(drawn.insert(task.entity_id.as_str()), "{} drawn twice", task.entity_id);
        assert_eq!(task.team.len(), inputs.campaign.team_size as usize);
        assert!(task.team.len() >= 2, "P1");
        let distinct: BTreeSet<&String> = task.team.iter().collect();
        assert_eq!(distinct.len(), task.team.len(), "distinct officers");
        for officer in &task.team {
            assert!(officers.contains(officer.as_str()), "{officer} is eligible");
            assert!(!recused.contains(&(officer.as_str(), task.entity_id.as_str())), "P4: {officer} recused");
            *load.entry(officer).or_default() += 1;
        }
    }
    assert!(load.values().all(|n| *n <= inputs.campaign.max_tasks_per_officer), "{load:?}");
    for tier in &inputs.campaign.tiers {
        let eligible = inputs.entities.iter().filter(|e| e.tier == tier.tier).count();
        let expected = match tier.quota {
            Quota::Count { count } => count as usize,
            Quota::PerMille { per_mille } => (eligible * per_mille as usize).div_ceil(1000),
        };
        assert_eq!(draw.tasks.iter().filter(|t| t.tier == tier.tier).count(), expected, "tier {}", tier.tier);
    }
}

/// RFC 8439 A.1, test vector 1: the ChaCha20 block of the all-zero key and nonce, counter 0.
#[test]
fn the_stream_is_rfc_8439_chacha20() {
    let expected = hex::decode(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
         da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
    )
    .unwrap();
    let mut stream = Stream::new(&[0; 32]);
    for word in expected.chunks(8) {
        assert_eq!(stream.next_u64(), u64::from_le_bytes(word.try_into().unwrap()));
    }
}

#[test]
fn p1_p4_a_draw_that_cannot_keep_the_rules_fails_with_the_reason() {
    let mut inputs = city(9, 2, &[], [1; 32]);
    inputs.campaign.team_size = 1;
    assert_eq!(draw(&inputs), Err(DrawError::TeamTooSmall { team_size: 1 }), "P1: two officers at least");
    let mut inputs = city(9, 3, &[(0, 0), (1, 0)], [1; 32]);
    inputs.campaign.tiers = vec![TierQuota { tier: "special".into(), quota: Quota::Count { count: 1 } }];
    // E00000 is the only special entity drawn; two of the three officers are recused from it.
    assert_eq!(
        draw(&inputs),
        Err(DrawError::NotEnoughOfficers { entity_id: "E00000".into(), candidates: 1, team_size: 2 }),
        "P4: recused officers are never drawn, even when that leaves too few"
    );
    let mut inputs = city(9, 10, &[], [1; 32]);
    inputs.campaign.tiers = vec![TierQuota { tier: "key".into(), quota: Quota::Count { count: 4 } }];
    assert_eq!(draw(&inputs), Err(DrawError::QuotaTooLarge { tier: "key".into(), count: 4, eligible: 3 }));
    let mut inputs = city(30, 4, &[], [1; 32]);
    inputs.campaign.max_tasks_per_officer = 1;
    assert!(matches!(draw(&inputs), Err(DrawError::NotEnoughOfficers { .. })), "the per-officer limit holds");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("FIELDSYNC_PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    ))]

    /// The same inputs always give the same draw, and every draw keeps the rules.
    #[test]
    fn every_draw_is_reproducible_and_keeps_the_rules(
        entities in 3usize..60,
        officers in 2usize..40,
        recusals in proptest::collection::vec((0usize..40, 0usize..60), 0..40),
        server_seed in any::<[u8; 32]>(),
    ) {
        let inputs = city(entities, officers, &recusals, server_seed);
        match draw(&inputs) {
            Ok(first) => {
                prop_assert_eq!(&draw(&inputs).unwrap(), &first);
                check_rules(&inputs, &first);
            }
            Err(error) => prop_assert_eq!(draw(&inputs), Err(error)),
        }
    }

    /// Changing any byte of the server seed or of the public value, or any field of the
    /// campaign or the registries, changes the seed.
    #[test]
    fn every_input_byte_moves_the_seed(server_seed in any::<[u8; 32]>(), byte in 0usize..32, bit in 0u8..8) {
        let base = city(12, 6, &[(1, 2)], server_seed);
        let original = seed(&base);
        let mut changed = base.clone();
        changed.server_seed[byte] ^= 1 << bit;
        prop_assert_ne!(seed(&changed), original);
        let mut changed = base.clone();
        changed.public_value = "2026-11-26 福彩3D 123".into();
        prop_assert_ne!(seed(&changed), original);
        let mut changed = base.clone();
        changed.campaign.period = "2027-Q1".into();
        prop_assert_ne!(seed(&changed), original);
        let mut changed = base.clone();
        changed.campaign.max_tasks_per_officer += 1;
        prop_assert_ne!(seed(&changed), original);
        let mut changed = base.clone();
        changed.entities[0].tier = "general".into();
        prop_assert_ne!(seed(&changed), original);
        let mut changed = base.clone();
        changed.officers.pop();
        prop_assert_ne!(seed(&changed), original);
        let mut changed = base.clone();
        changed.recusals.clear();
        prop_assert_ne!(seed(&changed), original);
        // The order in which registries are listed is not an input.
        let mut reordered = base.clone();
        reordered.entities.reverse();
        reordered.officers.reverse();
        prop_assert_eq!(seed(&reordered), original);
    }
}

/// Over 3,000 fixed seeds, drawing 3 of 10 key entities picks each about 900 times: the
/// chi-squared statistic stays below 27.88, the 0.1 % critical value for 9 degrees of freedom.
/// Officers likewise, over teams of two from 12.
#[test]
fn entities_and_officers_are_drawn_with_the_expected_frequency() {
    let runs = 3000;
    let mut entities: BTreeMap<String, u64> = BTreeMap::new();
    let mut officers: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..runs {
        let server_seed: [u8; 32] = Sha256::digest(format!("seed {n}")).into();
        let mut inputs = city(30, 12, &[], server_seed);
        inputs.campaign.tiers = vec![TierQuota { tier: "key".into(), quota: Quota::Count { count: 3 } }];
        inputs.campaign.max_tasks_per_officer = 3;
        for task in draw(&inputs).unwrap().tasks {
            *entities.entry(task.entity_id).or_default() += 1;
            for officer in task.team {
                *officers.entry(officer).or_default() += 1;
            }
        }
    }
    let chi_squared = |counts: &BTreeMap<String, u64>, cells: usize, total: u64| {
        assert_eq!(counts.len(), cells, "every one drawn at least once");
        let expected = total as f64 / cells as f64;
        counts.values().map(|&o| (o as f64 - expected).powi(2) / expected).sum::<f64>()
    };
    let entity_statistic = chi_squared(&entities, 10, runs * 3);
    assert!(entity_statistic < 27.88, "entities: chi-squared {entity_statistic:.2}: {entities:?}");
    // 11 degrees of freedom: the 0.1 % critical value is 31.26.
    let officer_statistic = chi_squared(&officers, 12, runs * 3 * 2);
    assert!(officer_statistic < 31.26, "officers: chi-squared {officer_statistic:.2}: {officers:?}");
}

/// The shared synthetic city: every special unit, 5 % of key units, 1 % of general units,
/// teams of two from the officers whose certificate is active, recusals from the registry.
#[test]
fn a_quarter_of_the_synthetic_city_is_drawn_within_the_rules() {
    let read = |name: &str| {
        std::fs::read_to_string(format!("{}/../../shared/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let rows = |text: String| -> Vec<Vec<String>> {
        text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
    };
    let entities: Vec<EligibleEntity> = rows(read("entities.csv"))
        .into_iter()
        .map(|r| EligibleEntity { entity_id: r[0].clone(), tier: r[6].clone() })
        .collect();
    let officers: Vec<String> =
        rows(read("officers.csv")).into_iter().filter(|r| r[6] == "active").map(|r| r[0].clone()).collect();
    let recusals: Vec<(String, String)> =
        rows(read("recusals.csv")).into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let inputs = DrawInputs {
        campaign: campaign(
            vec![
                ("special", Quota::PerMille { per_mille: 1000 }),
                ("key", Quota::PerMille { per_mille: 50 }),
                ("general", Quota::PerMille { per_mille: 10 }),
            ],
            2,
            4,
        ),
        entities,
        officers,
        recusals,
        server_seed: Sha256::digest(b"2026-Q4 city draw").into(),
        public_value: "20261126-3D-481".into(),
    };
    let result = draw(&inputs).unwrap();
    check_rules(&inputs, &result);
    assert_eq!(result.tasks.len(), 131 + 29 + 23);
}

/// The golden draw: inputs and the draw this algorithm makes of them, frozen. A change to the
/// algorithm that moves any draw fails here; `FIELDSYNC_WRITE_GOLDEN=1` rewrites the file, which
/// is a new algorithm version, not a fix.
#[test]
fn the_golden_draw_is_recomputed_exactly() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/draw-v1.json");
    let inputs = city(24, 8, &[(0, 0), (1, 0), (2, 3), (5, 6)], Sha256::digest(b"golden").into());
    let inputs = DrawInputs { public_value: "20261126".into(), ..inputs };
    let computed = draw(&inputs).unwrap();
    if std::env::var("FIELDSYNC_WRITE_GOLDEN").is_ok() {
        let golden = serde_json::json!({
            "inputs": inputs,
            "draw": computed,
            "commitment": hex::encode(sync_core::draw::commitment(&inputs.server_seed)),
            "committed_at_ms": 1_764_115_200_000_i64,
            "drawn_at_ms": 1_764_201_600_000_i64,
        });
        std::fs::write(path, serde_json::to_string_pretty(&golden).unwrap() + "\n").unwrap();
    }
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let frozen_inputs: DrawInputs = serde_json::from_value(golden["inputs"].clone()).unwrap();
    let frozen_draw: Draw = serde_json::from_value(golden["draw"].clone()).unwrap();
    assert_eq!(frozen_inputs, inputs, "the golden inputs");
    assert_eq!(draw(&frozen_inputs).unwrap(), frozen_draw, "recomputed from the published inputs");
    check_rules(&frozen_inputs, &frozen_draw);
    // The published form: its commitment holds, and each way of breaking it is named.
    let published: sync_core::draw::PublishedDraw = serde_json::from_value(golden).unwrap();
    assert_eq!(sync_core::draw::verify_published(&published).unwrap(), frozen_draw);
    use sync_core::draw::PublishedDrawError as E;
    let broken = |change: &dyn Fn(&mut sync_core::draw::PublishedDraw)| {
        let mut copy = published.clone();
        change(&mut copy);
        sync_core::draw::verify_published(&copy).unwrap_err()
    };
    assert!(matches!(broken(&|p| p.inputs.server_seed[0] ^= 1), E::CommitmentMismatch { .. }));
    assert!(matches!(broken(&|p| p.committed_at_ms = p.drawn_at_ms), E::CommittedAfterDraw { .. }));
    assert_eq!(broken(&|p| p.commitment = None), E::CommitmentMissing);
    assert!(matches!(broken(&|p| p.draw.tasks.reverse()), E::Mismatch(_)));
}
