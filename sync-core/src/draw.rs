//! The random inspection draw (双随机): which entities are inspected, and by whom, as a pure
//! function of published inputs, so that anyone can recompute it.
//!
//! # The algorithm, version `fieldsync-draw/v1`
//!
//! `sync-core/docs/draw-v1.md` is the complete specification for a third party (byte encodings,
//! the published JSON, how its commitment is checked, every error, a test vector); in short:
//!
//! 1. **Seed.** SHA-256 over the prefix `fieldsync/draw/v1\0` followed by, each as a 4-byte
//!    big-endian length and the bytes: the algorithm name; the campaign's canonical encoding
//!    ([`Campaign::canonical`]); the SHA-256 of the eligible entities' canonical encoding; the
//!    SHA-256 of the eligible officers' canonical encoding; the SHA-256 of the recusals'
//!    canonical encoding; the server's revealed seed (32 bytes); the public value (UTF-8, empty
//!    when none). Lists are sorted before encoding ([`snapshot_hash`] says how).
//! 2. **Stream.** The ChaCha20 keystream (RFC 8439) with the seed as key, an all-zero 96-bit
//!    nonce and the block counter from 0, read as consecutive little-endian `u64` words.
//! 3. **Uniform integers.** `below(n)`: take the next word `x`; reject it while
//!    `x < 2^64 mod n`; return `x mod n`.
//! 4. **Targets.** Tiers in the campaign's order. A tier's eligible entities are sorted by entity
//!    id; its quota is `count`, or `ceil(n × per_mille / 1000)` of its `n` entities. The first
//!    `quota` positions of a Fisher–Yates shuffle are drawn: for `i` in `0..quota`,
//!    `j = i + below(n − i)`, swap `i` and `j`. The drawn entities keep that order.
//! 5. **Teams.** For each drawn entity in order: the candidates are the eligible officers (sorted
//!    by officer id) not recused from it and below the per-officer maximum of tasks; they are
//!    shuffled whole with the same Fisher–Yates step, then stably sorted by the number of tasks
//!    each already has, and the first `team_size` form the team (sorted by officer id).
//!    Fewer candidates than `team_size` fails the draw with [`DrawError::NotEnoughOfficers`]: a
//!    rule is never bent.
//!
//! Nothing here uses a library sampler whose output could change between versions; only the
//! ChaCha20 keystream, which RFC 8439 fixes.

use std::collections::{BTreeMap, BTreeSet};

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The name and version of the algorithm in this module.
pub const ALGORITHM: &str = "fieldsync-draw/v1";

const SEED_DOMAIN: &[u8] = b"fieldsync/draw/v1\0";

/// How many entities of a tier to draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "quota")]
pub enum Quota {
    /// A share of the tier's eligible entities, in thousandths, rounded up (50 = 5 %).
    PerMille { per_mille: u32 },
    /// A fixed number.
    Count { count: u32 },
}

/// One tier's quota.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierQuota {
    pub tier: String,
    #[serde(flatten)]
    pub quota: Quota,
}

/// What a campaign draws: its identity, matter and period (part of the seed), the quotas per
/// tier, the team size and the most tasks one officer may get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub campaign_id: String,
    pub matter: String,
    /// The period, as published (for example `2026-Q4`).
    pub period: String,
    pub tiers: Vec<TierQuota>,
    pub team_size: u32,
    pub max_tasks_per_officer: u32,
}

impl Campaign {
    /// The canonical encoding that enters the seed.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        field(&mut out, self.campaign_id.as_bytes());
        field(&mut out, self.matter.as_bytes());
        field(&mut out, self.period.as_bytes());
        out.extend((self.tiers.len() as u32).to_be_bytes());
        for tier in &self.tiers {
            field(&mut out, tier.tier.as_bytes());
            match tier.quota {
                Quota::PerMille { per_mille } => {
                    out.push(1);
                    out.extend(per_mille.to_be_bytes());
                }
                Quota::Count { count } => {
                    out.push(2);
                    out.extend(count.to_be_bytes());
                }
            }
        }
        out.extend(self.team_size.to_be_bytes());
        out.extend(self.max_tasks_per_officer.to_be_bytes());
        out
    }
}

/// An entity the campaign's target filter admits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EligibleEntity {
    pub entity_id: String,
    pub tier: String,
}

/// Everything the draw is a function of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawInputs {
    pub campaign: Campaign,
    pub entities: Vec<EligibleEntity>,
    /// Officers with a valid certificate for the period.
    pub officers: Vec<String>,
    /// (officer id, entity id) pairs: the officer may not inspect the entity (P4).
    pub recusals: Vec<(String, String)>,
    /// The server's seed, committed to (its SHA-256 published) before the draw.
    #[serde(with = "hex32")]
    pub server_seed: [u8; 32],
    /// A public value supplied at draw time (a published lottery number), or empty.
    pub public_value: String,
}

/// One drawn inspection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnTask {
    pub entity_id: String,
    pub tier: String,
    /// Sorted by officer id.
    pub team: Vec<String>,
}

/// The draw's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub algorithm: String,
    #[serde(with = "hex32")]
    pub seed: [u8; 32],
    pub tasks: Vec<DrawnTask>,
}

/// Why a draw cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum DrawError {
    #[error("a team needs at least two officers (P1); the campaign asks for {team_size}")]
    TeamTooSmall { team_size: u32 },
    #[error("tier {tier} has {eligible} eligible entities; the campaign asks for {count}")]
    QuotaTooLarge { tier: String, count: u32, eligible: usize },
    #[error("tier {tier} is named twice")]
    DuplicateTier { tier: String },
    #[error("entity {entity_id}: {candidates} officer(s) eligible and under the limit, {team_size} needed")]
    NotEnoughOfficers { entity_id: String, candidates: usize, team_size: u32 },
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend((bytes.len() as u32).to_be_bytes());
    out.extend(bytes);
}

/// SHA-256 of a list's canonical encoding: items sorted, each field length-prefixed.
pub fn snapshot_hash<I, F>(items: I) -> [u8; 32]
where
    I: IntoIterator<Item = F>,
    F: IntoIterator<Item = String>,
{
    let mut rows: Vec<Vec<u8>> = items
        .into_iter()
        .map(|fields| {
            let mut row = Vec::new();
            for f in fields {
                field(&mut row, f.as_bytes());
            }
            row
        })
        .collect();
    rows.sort();
    let mut hasher = Sha256::new();
    hasher.update((rows.len() as u64).to_be_bytes());
    for row in rows {
        hasher.update(row);
    }
    hasher.finalize().into()
}

/// The draw's seed (step 1).
pub fn seed(inputs: &DrawInputs) -> [u8; 32] {
    let entities = snapshot_hash(inputs.entities.iter().map(|e| [e.entity_id.clone(), e.tier.clone()]));
    let officers = snapshot_hash(inputs.officers.iter().map(|o| [o.clone()]));
    let recusals = snapshot_hash(inputs.recusals.iter().map(|(o, e)| [o.clone(), e.clone()]));
    let mut encoded = SEED_DOMAIN.to_vec();
    field(&mut encoded, ALGORITHM.as_bytes());
    field(&mut encoded, &inputs.campaign.canonical());
    field(&mut encoded, &entities);
    field(&mut encoded, &officers);
    field(&mut encoded, &recusals);
    field(&mut encoded, &inputs.server_seed);
    field(&mut encoded, inputs.public_value.as_bytes());
    Sha256::digest(encoded).into()
}

/// A draw as it is published, for anyone to check offline: its inputs (the server's seed
/// revealed), its result, and the commitment to the seed published before it, with both times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDraw {
    pub inputs: DrawInputs,
    pub draw: Draw,
    /// SHA-256 of the server's seed, hex, as published when the campaign was created.
    #[serde(default)]
    pub commitment: Option<String>,
    /// When the commitment was published, Unix milliseconds.
    #[serde(default)]
    pub committed_at_ms: Option<i64>,
    /// When the draw was made (the seed revealed), Unix milliseconds.
    #[serde(default)]
    pub drawn_at_ms: Option<i64>,
}

/// Why a published draw does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishedDrawError {
    #[error("the published draw carries no commitment to its seed, or not its times")]
    CommitmentMissing,
    #[error("SHA-256 of the revealed seed is {revealed}, not the commitment {published}")]
    CommitmentMismatch { published: String, revealed: String },
    #[error("the commitment was published at {committed_at_ms}, not before the draw at {drawn_at_ms}")]
    CommittedAfterDraw { committed_at_ms: i64, drawn_at_ms: i64 },
    #[error("its inputs do not make a draw: {0}")]
    Inputs(DrawError),
    #[error("the draw does not follow from its inputs: {0}")]
    Mismatch(String),
}

/// Checks a published draw: the revealed seed hashes to the commitment, the commitment was
/// published before the draw, and the draw is what its inputs make. Returns the recomputed draw.
pub fn verify_published(published: &PublishedDraw) -> Result<Draw, PublishedDrawError> {
    let (Some(commitment_hex), Some(committed_at_ms), Some(drawn_at_ms)) =
        (&published.commitment, published.committed_at_ms, published.drawn_at_ms)
    else {
        return Err(PublishedDrawError::CommitmentMissing);
    };
    let revealed = hex_lower(&commitment(&published.inputs.server_seed));
    if &revealed != commitment_hex {
        return Err(PublishedDrawError::CommitmentMismatch { published: commitment_hex.clone(), revealed });
    }
    if committed_at_ms >= drawn_at_ms {
        return Err(PublishedDrawError::CommittedAfterDraw { committed_at_ms, drawn_at_ms });
    }
    verify_inputs(published)
}

/// Checks only that a published draw is what its inputs make (no commitment).
pub fn verify_inputs(published: &PublishedDraw) -> Result<Draw, PublishedDrawError> {
    let recomputed = draw(&published.inputs).map_err(PublishedDrawError::Inputs)?;
    if recomputed != published.draw {
        let first = recomputed.tasks.iter().zip(&published.draw.tasks).position(|(a, b)| a != b);
        return Err(PublishedDrawError::Mismatch(match first {
            Some(index) => format!("task {index} differs"),
            None if recomputed.seed != published.draw.seed => "the seed differs".into(),
            None => "the number of tasks differs".into(),
        }));
    }
    Ok(recomputed)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a server seed: what a campaign publishes before the draw.
pub fn commitment(server_seed: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(server_seed).into()
}

/// The ChaCha20 keystream as `u64` words, and uniform integers from it (steps 2 and 3).
pub struct Stream {
    cipher: ChaCha20,
}

impl Stream {
    pub fn new(seed: &[u8; 32]) -> Self {
        Self { cipher: ChaCha20::new(seed.into(), &[0u8; 12].into()) }
    }

    /// The next eight keystream bytes, little-endian.
    pub fn next_u64(&mut self) -> u64 {
        let mut word = [0u8; 8];
        self.cipher.apply_keystream(&mut word);
        u64::from_le_bytes(word)
    }

    /// A uniform integer in `0..n` (`n` at least 1), by rejection.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            if x >= threshold {
                return x % n;
            }
        }
    }

    /// Moves the first `k` positions of `items` to a uniform random choice, in random order.
    pub fn partial_shuffle<T>(&mut self, items: &mut [T], k: usize) {
        let n = items.len();
        for i in 0..k.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            items.swap(i, j);
        }
    }
}

/// Makes the draw (steps 4 and 5).
pub fn draw(inputs: &DrawInputs) -> Result<Draw, DrawError> {
    let campaign = &inputs.campaign;
    if campaign.team_size < 2 {
        return Err(DrawError::TeamTooSmall { team_size: campaign.team_size });
    }
    let mut tiers_seen = BTreeSet::new();
    for tier in &campaign.tiers {
        if !tiers_seen.insert(tier.tier.as_str()) {
            return Err(DrawError::DuplicateTier { tier: tier.tier.clone() });
        }
    }
    let seed = seed(inputs);
    let mut stream = Stream::new(&seed);

    let mut targets: Vec<&EligibleEntity> = Vec::new();
    let entities: BTreeSet<&EligibleEntity> = inputs.entities.iter().collect();
    for tier in &campaign.tiers {
        let mut eligible: Vec<&EligibleEntity> = entities.iter().copied().filter(|e| e.tier == tier.tier).collect();
        let n = eligible.len();
        let quota = match tier.quota {
            Quota::Count { count } => {
                if count as usize > n {
                    return Err(DrawError::QuotaTooLarge { tier: tier.tier.clone(), count, eligible: n });
                }
                count as usize
            }
            Quota::PerMille { per_mille } => (n as u64 * per_mille.min(1000) as u64).div_ceil(1000) as usize,
        };
        stream.partial_shuffle(&mut eligible, quota);
        targets.extend(&eligible[..quota]);
    }

    let officers: Vec<&String> = inputs.officers.iter().collect::<BTreeSet<_>>().into_iter().collect();
    let recused: BTreeSet<(&str, &str)> = inputs.recusals.iter().map(|(o, e)| (o.as_str(), e.as_str())).collect();
    let mut load: BTreeMap<&str, u32> = BTreeMap::new();
    let mut tasks = Vec::new();
    for target in targets {
        let mut candidates: Vec<&str> = officers
            .iter()
            .map(|o| o.as_str())
            .filter(|o| !recused.contains(&(*o, target.entity_id.as_str())))
            .filter(|o| load.get(o).copied().unwrap_or(0) < campaign.max_tasks_per_officer)
            .collect();
        if candidates.len() < campaign.team_size as usize {
            return Err(DrawError::NotEnoughOfficers {
                entity_id: target.entity_id.clone(),
                candidates: candidates.len(),
                team_size: campaign.team_size,
            });
        }
        let all = candidates.len();
        stream.partial_shuffle(&mut candidates, all);
        candidates.sort_by_key(|o| load.get(o).copied().unwrap_or(0));
        let chosen = &candidates[..campaign.team_size as usize];
        for officer in chosen {
            *load.entry(officer).or_default() += 1;
        }
        let mut team: Vec<String> = chosen.iter().map(|o| o.to_string()).collect();
        team.sort();
        tasks.push(DrawnTask { entity_id: target.entity_id.clone(), tier: target.tier.clone(), team });
    }
    Ok(Draw { algorithm: ALGORITHM.to_string(), seed, tasks })
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}
