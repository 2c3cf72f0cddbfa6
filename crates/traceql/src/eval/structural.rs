//! Spanset operators: `&&`, `||` and the structural relations between the spans of two spansets.
//!
//! Spansets are sorted span indexes into the trace. Relations use the whole trace's tree, so `{ a } >> { b }`
//! finds `b` spans under an `a` span even when the spans in between match neither side.

use super::trace::TraceIndex;
use crate::ast::SpansetOp;

/// `lhs op rhs` for two spansets of one trace.
pub(crate) fn combine(trace: &TraceIndex<'_>, op: SpansetOp, lhs: &[usize], rhs: &[usize]) -> Vec<usize> {
    use SpansetOp::*;
    let (a, b) = (Members::new(trace, lhs), Members::new(trace, rhs));
    let keep = |set: &[usize], pred: &dyn Fn(usize) -> bool| set.iter().copied().filter(|&x| pred(x)).collect();
    match op {
        And if lhs.is_empty() || rhs.is_empty() => Vec::new(),
        And | Union => union(lhs, rhs),
        Child => keep(rhs, &|x| a.has_parent(x)),
        Parent => keep(rhs, &|x| a.has_child(x)),
        Descendant => keep(rhs, &|x| a.has_ancestor(x)),
        Ancestor => keep(rhs, &|x| a.has_descendant(x)),
        Sibling => keep(rhs, &|x| a.has_sibling(x)),
        NotChild => keep(rhs, &|x| !a.has_parent(x)),
        NotParent => keep(rhs, &|x| !a.has_child(x)),
        NotDescendant => keep(rhs, &|x| !a.has_ancestor(x)),
        NotAncestor => keep(rhs, &|x| !a.has_descendant(x)),
        NotSibling => keep(rhs, &|x| !a.has_sibling(x)),
        UnionChild => union(&keep(rhs, &|x| a.has_parent(x)), &keep(lhs, &|x| b.has_child(x))),
        UnionParent => union(&keep(rhs, &|x| a.has_child(x)), &keep(lhs, &|x| b.has_parent(x))),
        UnionDescendant => union(&keep(rhs, &|x| a.has_ancestor(x)), &keep(lhs, &|x| b.has_descendant(x))),
        UnionAncestor => union(&keep(rhs, &|x| a.has_descendant(x)), &keep(lhs, &|x| b.has_ancestor(x))),
        UnionSibling => union(&keep(rhs, &|x| a.has_sibling(x)), &keep(lhs, &|x| b.has_sibling(x))),
    }
}

/// Merges two sorted span lists.
pub(crate) fn union(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// One side of an operator, for asking how a span relates to it.
struct Members<'t, 'a> {
    trace: &'t TraceIndex<'a>,
    member: Vec<bool>,
    /// Spans with a member below them; filled lazily on the first ancestor question.
    above_member: std::cell::OnceCell<Vec<bool>>,
    /// For each parent, how many members are its children.
    members_under: std::cell::OnceCell<Vec<u32>>,
}

impl<'t, 'a> Members<'t, 'a> {
    fn new(trace: &'t TraceIndex<'a>, spans: &[usize]) -> Self {
        let mut member = vec![false; trace.len()];
        for &s in spans {
            member[s] = true;
        }
        Self { trace, member, above_member: Default::default(), members_under: Default::default() }
    }

    /// `x`'s parent is a member.
    fn has_parent(&self, x: usize) -> bool {
        self.trace.parent[x].is_some_and(|p| self.member[p])
    }

    /// A child of `x` is a member.
    fn has_child(&self, x: usize) -> bool {
        self.trace.children[x].iter().any(|&c| self.member[c])
    }

    /// An ancestor of `x` is a member.
    fn has_ancestor(&self, x: usize) -> bool {
        self.trace.ancestors(x).any(|p| self.member[p])
    }

    /// A descendant of `x` is a member.
    fn has_descendant(&self, x: usize) -> bool {
        self.above_member.get_or_init(|| {
            let mut above = vec![false; self.trace.len()];
            for m in (0..self.trace.len()).filter(|&m| self.member[m]) {
                for p in self.trace.ancestors(m) {
                    if above[p] {
                        break;
                    }
                    above[p] = true;
                }
            }
            above
        })[x]
    }

    /// Another child of `x`'s parent is a member.
    fn has_sibling(&self, x: usize) -> bool {
        let Some(p) = self.trace.parent[x] else { return false };
        let under = self.members_under.get_or_init(|| {
            let mut under = vec![0u32; self.trace.len()];
            for m in (0..self.trace.len()).filter(|&m| self.member[m]) {
                if let Some(p) = self.trace.parent[m] {
                    under[p] += 1;
                }
            }
            under
        });
        under[p] > u32::from(self.member[x])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_sorted_lists() {
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), vec![1, 2, 3, 5, 6]);
        assert_eq!(union(&[], &[4]), vec![4]);
    }
}
