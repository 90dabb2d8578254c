//! The Merkle tree of the transparency log: RFC 6962 / RFC 9162 hashing, inclusion and
//! consistency proofs, and their verification.
//!
//! Leaves are hashed `SHA-256(0x00 || data)` and inner nodes `SHA-256(0x01 || left || right)`,
//! so that no leaf can pass for a node. The tree of `n` leaves splits at the largest power of
//! two below `n` (RFC 9162 §2.1.1). Proofs are built from the leaf hashes (`inclusion_proof`,
//! `consistency_proof`, RFC 9162 §2.1.3.1 and §2.1.4.1) and checked with the algorithms of
//! §2.1.3.2 and §2.1.4.2, which need only the proof, the sizes and the roots: a reviewer's
//! verifier needs nothing else from the server.
//!
//! Written here rather than taken from a crate: the algorithms are short and fully specified,
//! and the crates that implement them are young and unaudited; the project's tests hold this
//! code to every case of the transparency-dev test vectors (`../shared/vectors/merkle/`).

use sha2::{Digest, Sha256};

/// A SHA-256 hash of a leaf or a node.
pub type Hash = [u8; 32];

/// Why a proof does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the first size {size1} is larger than the second {size2}")]
    SizesReversed { size1: u64, size2: u64 },
    #[error("a consistency proof from an empty tree proves nothing")]
    EmptyFirstTree,
    #[error("the proof has the wrong number of hashes ({found})")]
    WrongLength { found: usize },
    #[error("the leaf hash is {length} bytes, not 32")]
    BadLeafHash { length: usize },
    #[error("proof element {index} is {length} bytes, not 32")]
    BadElement { index: usize, length: usize },
    #[error("the proof leads to another root")]
    RootMismatch,
}

/// The hash of an empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an inner node over two children.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two strictly below `n` (`n` at least 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (leaf hashes, in order).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Where the roots of perfect subtrees come from. A log too large to read all its leaves for
/// each proof keeps the root of every complete subtree as leaves arrive (fewer than two hashes
/// per leaf, see [`subtrees_completed_by`]) and builds any root or proof from O(log² n) of them.
pub trait Subtrees {
    type Error;
    /// The root of the perfect subtree over leaves `index·2^level .. (index+1)·2^level`; level 0
    /// is the leaf hashes themselves.
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// A slice of leaf hashes answers from the leaves (each answer costs its subtree's size).
impl Subtrees for [Hash] {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let start = (index << level) as usize;
        Ok(root(&self[start..start + (1usize << level)]))
    }
}

/// The subtrees that leaf `leaf_index` completes, as (level, index) from level 1 up: each is
/// the node over the two subtrees of the level below, the second of which was just completed.
pub fn subtrees_completed_by(leaf_index: u64) -> Vec<(u32, u64)> {
    let count = (leaf_index + 1).trailing_zeros();
    (1..=count).map(|level| (level, leaf_index >> level)).collect()
}

/// Every complete subtree's root in memory: what a log keeps to answer proofs fast.
#[derive(Clone, Debug, Default)]
pub struct SubtreeCache {
    levels: Vec<Vec<Hash>>,
}

impl SubtreeCache {
    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Appends a leaf hash and the subtrees it completes.
    pub fn push(&mut self, leaf: Hash) {
        let index = self.size();
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        for (level, at) in subtrees_completed_by(index) {
            let below = &self.levels[level as usize - 1];
            let node = node_hash(&below[2 * at as usize], &below[2 * at as usize + 1]);
            if self.levels.len() <= level as usize {
                self.levels.push(Vec::new());
            }
            self.levels[level as usize].push(node);
        }
    }
}

impl Subtrees for SubtreeCache {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

/// The root of leaves `start..end` of `tree`, a range the RFC's recursion produces (its start is
/// a multiple of the largest power of two not above its size).
fn range_root<S: Subtrees + ?Sized>(tree: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return tree.subtree(level, start >> level);
    }
    let k = split(n as usize) as u64;
    Ok(node_hash(&range_root(tree, start, start + k)?, &range_root(tree, start + k, end)?))
}

/// The root of the first `size` leaves of `tree`.
pub fn root_of<S: Subtrees + ?Sized>(tree: &S, size: u64) -> Result<Hash, S::Error> {
    range_root(tree, 0, size)
}

/// The inclusion proof of leaf `index` in the tree over `leaves` (RFC 9162 §2.1.3.1), from the
/// leaf up. `None` if `index` is not a leaf.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    let Ok(proof) = inclusion_proof_of(leaves, leaves.len() as u64, index as u64);
    proof
}

/// The inclusion proof of leaf `index` in the first `size` leaves of `tree`. `None` if `index`
/// is not below `size`.
pub fn inclusion_proof_of<S: Subtrees + ?Sized>(
    tree: &S,
    size: u64,
    index: u64,
) -> Result<Option<Vec<Hash>>, S::Error> {
    if index >= size {
        return Ok(None);
    }
    let mut proof = Vec::new();
    path(tree, 0, size, index, &mut proof)?;
    Ok(Some(proof))
}

fn path<S: Subtrees + ?Sized>(
    tree: &S,
    start: u64,
    end: u64,
    index: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n as usize) as u64;
    if index < k {
        path(tree, start, start + k, index, proof)?;
        proof.push(range_root(tree, start + k, end)?);
    } else {
        path(tree, start + k, end, index - k, proof)?;
        proof.push(range_root(tree, start, start + k)?);
    }
    Ok(())
}

/// The proof that the tree of the first `size1` leaves is a prefix of the tree over `leaves`
/// (RFC 9162 §2.1.4.1). `None` unless `0 < size1 <= leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], size1: usize) -> Option<Vec<Hash>> {
    let Ok(proof) = consistency_proof_of(leaves, leaves.len() as u64, size1 as u64);
    proof
}

/// The proof that the first `size1` leaves of `tree` are a prefix of its first `size2`.
/// `None` unless `0 < size1 <= size2`.
pub fn consistency_proof_of<S: Subtrees + ?Sized>(
    tree: &S,
    size2: u64,
    size1: u64,
) -> Result<Option<Vec<Hash>>, S::Error> {
    if size1 == 0 || size1 > size2 {
        return Ok(None);
    }
    let mut proof = Vec::new();
    subproof(tree, 0, size2, size1, true, &mut proof)?;
    Ok(Some(proof))
}

fn subproof<S: Subtrees + ?Sized>(
    tree: &S,
    start: u64,
    end: u64,
    m: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(range_root(tree, start, end)?);
        }
        return Ok(());
    }
    let k = split(n as usize) as u64;
    if m <= k {
        subproof(tree, start, start + k, m, whole, proof)?;
        proof.push(range_root(tree, start + k, end)?);
    } else {
        subproof(tree, start + k, end, m - k, false, proof)?;
        proof.push(range_root(tree, start, start + k)?);
    }
    Ok(())
}

fn elements<P: AsRef<[u8]>>(proof: &[P]) -> Result<Vec<&[u8]>, ProofError> {
    proof
        .iter()
        .enumerate()
        .map(|(index, element)| {
            let element = element.as_ref();
            if element.len() == 32 { Ok(element) } else { Err(ProofError::BadElement { index, length: element.len() }) }
        })
        .collect()
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    if leaf_hash.len() != 32 {
        return Err(ProofError::BadLeafHash { length: leaf_hash.len() });
    }
    let proof = elements(proof)?;
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r: Vec<u8> = leaf_hash.to_vec();
    for p in &proof {
        if sn == 0 {
            return Err(ProofError::WrongLength { found: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r).to_vec();
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p).to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength { found: proof.len() });
    }
    if r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// How many hashes the inclusion proof of `index` in a tree of `size` holds.
#[cfg(test)]
fn inclusion_length(index: u64, size: u64) -> usize {
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    inner + border
}

/// Checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of `size2`
/// leaves with root `root2` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal
/// roots; a first tree of size zero is refused, as it proves nothing.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { found: proof.len() });
        }
        return if root1 == root2 { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    let proof = elements(proof)?;
    // When the first tree is a whole subtree, its root is the path's first element.
    let mut path: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend(proof.iter().copied());
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength { found: 0 });
    };
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr): (Vec<u8>, Vec<u8>) = (first.to_vec(), first.to_vec());
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongLength { found: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr).to_vec();
            sr = node_hash(c, &sr).to_vec();
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c).to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength { found: proof.len() });
    }
    if fr != root1 || sr != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    /// RFC 6962's reference hashes: the empty tree and the tree of one empty leaf.
    #[test]
    fn known_roots() {
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(hex::encode(leaf_hash(b"")), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }

    proptest! {
        /// Every proof the tree builds verifies, and fails for any other leaf, index or root.
        #[test]
        fn proofs_built_here_verify(n in 1usize..70, index_seed in any::<usize>(), size1_seed in any::<usize>()) {
            let leaves = leaves(n);
            let top = root(&leaves);
            let index = index_seed % n;
            let proof = inclusion_proof(&leaves, index).unwrap();
            prop_assert!(verify_inclusion(index as u64, n as u64, &leaves[index], &proof, &top).is_ok());
            prop_assert_eq!(proof.len(), inclusion_length(index as u64, n as u64));
            let other = leaf_hash(b"another entry");
            prop_assert!(verify_inclusion(index as u64, n as u64, &other, &proof, &top).is_err());
            if n > 1 {
                let wrong = (index + 1) % n;
                prop_assert!(verify_inclusion(wrong as u64, n as u64, &leaves[index], &proof, &top).is_err());
            }
            let size1 = 1 + size1_seed % n;
            let first = root(&leaves[..size1]);
            let consistency = consistency_proof(&leaves, size1).unwrap();
            prop_assert!(verify_consistency(size1 as u64, n as u64, &consistency, &first, &top).is_ok());
            if size1 < n {
                prop_assert!(verify_consistency(size1 as u64, n as u64, &consistency, &top, &top).is_err());
            }
        }

        /// A log that keeps only complete subtrees gives the same roots and proofs as the leaves,
        /// at every size it passed through.
        #[test]
        fn subtree_cache_answers_as_the_leaves(n in 1usize..140, index_seed in any::<u64>(), size1_seed in any::<u64>()) {
            let leaves = leaves(n);
            let mut cache = SubtreeCache::default();
            for leaf in &leaves {
                cache.push(*leaf);
            }
            prop_assert_eq!(cache.size(), n as u64);
            let size = 1 + index_seed % n as u64;
            let Ok(cached_root) = root_of(&cache, size);
            prop_assert_eq!(cached_root, root(&leaves[..size as usize]));
            let index = index_seed % size;
            let Ok(cached) = inclusion_proof_of(&cache, size, index);
            prop_assert_eq!(cached, inclusion_proof(&leaves[..size as usize], index as usize));
            let size1 = 1 + size1_seed % size;
            let Ok(cached) = consistency_proof_of(&cache, size, size1);
            prop_assert_eq!(cached, consistency_proof(&leaves[..size as usize], size1 as usize));
        }
    }

    #[test]
    fn subtrees_completed_by_each_leaf() {
        assert_eq!(subtrees_completed_by(0), vec![]);
        assert_eq!(subtrees_completed_by(1), vec![(1, 0)]);
        assert_eq!(subtrees_completed_by(2), vec![]);
        assert_eq!(subtrees_completed_by(3), vec![(1, 1), (2, 0)]);
        assert_eq!(subtrees_completed_by(7), vec![(1, 3), (2, 1), (3, 0)]);
    }
}
