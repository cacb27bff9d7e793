//! The Merkle tree of RFC 6962 §2.1 (RFC 9162 §2.1) over the domain suite's hash H
//! (SHA-256, or SM3 in the `gm` suite), and its proofs.
//!
//! - leaf hash: `H(0x00 ‖ leaf bytes)`; node hash: `H(0x01 ‖ left ‖ right)`; the empty
//!   tree's hash is `H("")`;
//! - a tree of n > 1 leaves splits at k, the largest power of two smaller than n: its hash
//!   is the node hash of the first k leaves' tree and of the other n − k leaves' tree;
//! - the tree is stored as its *perfect subtrees*: the node at `(level, index)` is the hash
//!   of leaves `[index·2^level, (index+1)·2^level)`. Every subtree the proofs need is a
//!   node hash of O(log n) of them ([`Nodes`], [`subtree`]).
//!
//! **Invariant:** this module is pure: no I/O, no store. The verifiers
//! ([`verify_inclusion`], [`verify_consistency`]) are RFC 9162 §2.1.3.2 and §2.1.4.2 and
//! take nothing but hashes, so anyone holding a proof and a signed checkpoint can check it.

use sandbox_core::{Error, Result, Suite};

/// A hash of the suite (32 bytes in both).
pub type Hash = [u8; 32];

/// The hash of a leaf: `H(0x00 ‖ data)`.
pub fn leaf_hash(suite: Suite, data: &[u8]) -> Hash {
    suite.hash(&[&[0u8], data])
}

/// The hash of an inner node: `H(0x01 ‖ left ‖ right)`.
pub fn node_hash(suite: Suite, left: &Hash, right: &Hash) -> Hash {
    suite.hash(&[&[1u8], left, right])
}

/// The hash of the empty tree: `H("")`.
pub fn empty_root(suite: Suite) -> Hash {
    suite.hash(&[])
}

/// The largest power of two smaller than `n`: where a tree of `n ≥ 2` leaves splits (0 for
/// smaller `n`, which do not split).
pub fn split(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hex of a hash.
pub fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// A hash from 64 hex digits.
pub fn from_hex(s: &str) -> Result<Hash> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Verify(format!("`{s}` is not a 32-byte hash in hex")))
}

/// The root of a tree over the given leaf hashes, by the definition (recursive split).
pub fn root(suite: Suite, leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(suite),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(
                suite,
                &root(suite, &leaves[..k]),
                &root(suite, &leaves[k..]),
            )
        }
    }
}

/// A compact range from leaf 0: the roots of the perfect subtrees that make up the first
/// `size` leaves, left to right (one per set bit of `size`, largest first). Appending a leaf
/// merges equal-sized subtrees, as adding one to a binary counter carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    suite: Suite,
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty range.
    pub fn new(suite: Suite) -> Frontier {
        Frontier {
            suite,
            size: 0,
            nodes: Vec::new(),
        }
    }

    /// The range of `size` leaves made of the given perfect-subtree roots (largest first).
    /// Fails if their number does not match `size`.
    pub fn from_nodes(suite: Suite, size: u64, nodes: Vec<Hash>) -> Result<Frontier> {
        if nodes.len() != size.count_ones() as usize {
            return Err(Error::Internal(format!(
                "a range of {size} leaves has {} perfect subtrees, not {}",
                size.count_ones(),
                nodes.len()
            )));
        }
        Ok(Frontier { suite, size, nodes })
    }

    /// The `(level, index)` of each perfect subtree of a range of `size` leaves from 0,
    /// largest first.
    pub fn positions(size: u64) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                out.push((level, offset >> level));
                offset += 1u64 << level;
            }
        }
        out
    }

    /// Leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the inner nodes this completed, as
    /// `(level, index, hash)`, lowest first.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut made = Vec::new();
        let mut h = leaf;
        let mut index = self.size;
        let mut level = 0u32;
        while index & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                break; // unreachable: a set bit always has its subtree
            };
            h = node_hash(self.suite, &left, &h);
            index >>= 1;
            level += 1;
            made.push((level, index, h));
        }
        self.nodes.push(h);
        self.size += 1;
        made
    }

    /// The root of the first `size` leaves.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        match it.next() {
            None => empty_root(self.suite),
            Some(last) => it.fold(*last, |acc, left| node_hash(self.suite, left, &acc)),
        }
    }
}

/// Where the perfect subtrees come from (the store, or memory).
pub trait Nodes {
    /// The suite whose hash made them.
    fn suite(&self) -> Suite;
    /// The hash of leaves `[index·2^level, (index+1)·2^level)`.
    fn node(&mut self, level: u32, index: u64) -> Result<Hash>;
}

/// Leaf hashes in memory as a [`Nodes`] source (each node computed on demand).
#[derive(Debug, Clone, Copy)]
pub struct Leaves<'a> {
    /// The suite whose hash made them.
    pub suite: Suite,
    /// The leaf hashes.
    pub leaves: &'a [Hash],
}

impl Nodes for Leaves<'_> {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn node(&mut self, level: u32, index: u64) -> Result<Hash> {
        let width = 1usize << level;
        let start = (index as usize) * width;
        self.leaves
            .get(start..start + width)
            .map(|l| root(self.suite, l))
            .ok_or_else(|| Error::Internal(format!("no node ({level}, {index})")))
    }
}

/// The hash of the tree over leaves `[a, b)` (`a < b`), from O(log(b − a)) perfect subtrees.
pub fn subtree(nodes: &mut impl Nodes, a: u64, b: u64) -> Result<Hash> {
    let len = b - a;
    if len.is_power_of_two() && a.is_multiple_of(len) {
        return nodes.node(len.trailing_zeros(), a / len);
    }
    let k = split(len);
    let left = subtree(nodes, a, a + k)?;
    let right = subtree(nodes, a + k, b)?;
    Ok(node_hash(nodes.suite(), &left, &right))
}

/// The root of the first `size` leaves.
pub fn root_at(nodes: &mut impl Nodes, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(empty_root(nodes.suite()));
    }
    subtree(nodes, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves: RFC 6962
/// §2.1.1's `PATH(m, D[n])`, siblings from the leaf up.
pub fn inclusion_path(nodes: &mut impl Nodes, index: u64, size: u64) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::NotFound(format!(
            "leaf {index} is not in a tree of {size} leaves"
        )));
    }
    // Walk down from the root, collecting the sibling subtree at each split.
    let mut path = Vec::new();
    let (mut a, mut b, mut m) = (0u64, size, index);
    while b - a > 1 {
        let k = split(b - a);
        if m < k {
            path.push(subtree(nodes, a + k, b)?);
            b = a + k;
        } else {
            path.push(subtree(nodes, a, a + k)?);
            a += k;
            m -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the trees of the first `first` and the first `second`
/// leaves: RFC 6962 §2.1.2's `PROOF(m, D[n])`. Empty when `first` is 0 or equals `second`.
pub fn consistency_path(nodes: &mut impl Nodes, first: u64, second: u64) -> Result<Vec<Hash>> {
    if first > second {
        return Err(Error::Conflict(format!(
            "a tree of {first} leaves cannot precede one of {second}"
        )));
    }
    if first == 0 || first == second {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[a:b], whole), walked down from the root.
    let mut path = Vec::new();
    let (mut a, mut b, mut m, mut whole) = (0u64, second, first, true);
    loop {
        if m == b - a {
            if !whole {
                path.push(subtree(nodes, a, b)?);
            }
            break;
        }
        let k = split(b - a);
        if m <= k {
            path.push(subtree(nodes, a + k, b)?);
            b = a + k;
        } else {
            path.push(subtree(nodes, a, a + k)?);
            a += k;
            m -= k;
            whole = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// Checks an inclusion proof: RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    suite: Suite,
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<()> {
    if index >= size {
        return Err(Error::Verify(format!(
            "leaf {index} cannot be in a tree of {size} leaves"
        )));
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return Err(Error::Verify("inclusion proof is too long".into()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(suite, p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(suite, &r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(Error::Verify("inclusion proof is too short".into()));
    }
    if &r != root {
        return Err(Error::Verify(
            "inclusion proof does not lead to the root".into(),
        ));
    }
    Ok(())
}

/// Checks a consistency proof: RFC 9162 §2.1.4.2. A tree is consistent with itself (empty
/// proof, equal roots) and every tree with the empty one (empty proof).
pub fn verify_consistency(
    suite: Suite,
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    path: &[Hash],
) -> Result<()> {
    if first > second {
        return Err(Error::Verify(format!(
            "a tree of {first} leaves cannot precede one of {second}"
        )));
    }
    if first == second {
        if !path.is_empty() || first_root != second_root {
            return Err(Error::Verify(
                "trees of the same size must have the same root and an empty proof".into(),
            ));
        }
        return Ok(());
    }
    if first == 0 {
        if !path.is_empty() {
            return Err(Error::Verify(
                "the proof from the empty tree must be empty".into(),
            ));
        }
        return Ok(());
    }
    if path.is_empty() {
        return Err(Error::Verify("consistency proof is empty".into()));
    }
    let mut c: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if first.is_power_of_two() {
        c.push(*first_root);
    }
    c.extend_from_slice(path);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (c[0], c[0]);
    for p in &c[1..] {
        if sn == 0 {
            return Err(Error::Verify("consistency proof is too long".into()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(suite, p, &fr);
            sr = node_hash(suite, p, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(suite, &sr, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(Error::Verify("consistency proof is too short".into()));
    }
    if &fr != first_root {
        return Err(Error::Verify(
            "consistency proof does not lead to the first root".into(),
        ));
    }
    if &sr != second_root {
        return Err(Error::Verify(
            "consistency proof does not lead to the second root".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Suite = Suite::Standard;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(S, &i.to_le_bytes())).collect()
    }

    fn mem(leaves: &[Hash]) -> Leaves<'_> {
        Leaves { suite: S, leaves }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn frontier_roots_and_nodes_match_the_definition() -> Result<()> {
        let all = leaves(70);
        let mut f = Frontier::new(S);
        assert_eq!(f.root(), empty_root(S));
        for (i, l) in all.iter().enumerate() {
            for (level, index, h) in f.push(*l) {
                assert_eq!(h, mem(&all).node(level, index)?);
            }
            let n = i as u64 + 1;
            assert_eq!(f.root(), root(S, &all[..=i]));
            assert_eq!(root_at(&mut mem(&all), n)?, root(S, &all[..=i]));
            let mut src = mem(&all);
            let nodes = Frontier::positions(n)
                .into_iter()
                .map(|(l, x)| src.node(l, x))
                .collect::<Result<Vec<_>>>()?;
            assert_eq!(Frontier::from_nodes(S, n, nodes)?, f);
        }
        Ok(())
    }

    #[test]
    fn every_proof_verifies_and_a_flipped_bit_does_not() -> Result<()> {
        let all = leaves(33);
        for n in 1..=all.len() as u64 {
            let tree = &all[..n as usize];
            let r = root(S, tree);
            for i in 0..n {
                let path = inclusion_path(&mut mem(tree), i, n)?;
                verify_inclusion(S, &tree[i as usize], i, n, &path, &r)?;
                for j in 0..path.len() {
                    let mut bad = path.clone();
                    bad[j][0] ^= 1;
                    assert!(verify_inclusion(S, &tree[i as usize], i, n, &bad, &r).is_err());
                }
                if n > 1 {
                    assert!(
                        verify_inclusion(S, &tree[i as usize], (i + 1) % n, n, &path, &r).is_err()
                    );
                }
            }
            for m in 0..=n {
                let path = consistency_path(&mut mem(tree), m, n)?;
                let rm = root(S, &tree[..m as usize]);
                verify_consistency(S, m, n, &rm, &r, &path)?;
                for j in 0..path.len() {
                    let mut bad = path.clone();
                    bad[j][31] ^= 0x80;
                    assert!(verify_consistency(S, m, n, &rm, &r, &bad).is_err());
                }
                if 0 < m && m < n {
                    assert!(verify_consistency(S, m, n, &r, &rm, &path).is_err());
                }
            }
        }
        Ok(())
    }
}
