//! The referral graph in memory (petgraph), kept equal to Postgres by replaying the
//! `user_events` outbox in seq order. Edges point from a user to their referrer.
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::Direction;
use schemas::{InactivePolicy, Plan, UserId};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// Users by id, hashed with foldhash rather than std's SipHash: at 10M users the snapshot
/// load makes three lookups a row into a table far larger than the caches, and SipHash's
/// rounds came on top of every miss. Ids are made by the server (`UserId::new`); a lookup
/// of a made-up id costs what any miss costs, and foldhash's seed is random per process.
type Index = HashMap<UserId, NodeIndex, foldhash::fast::RandomState>;

/// An ancestor as the payout saw it: who, and whether they were active then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub user_id: UserId,
    pub active: bool,
}

/// The bytes of one ancestor in `purchases.ancestors`: the user's uuid, then 1 if active.
const STORED_LEN: usize = 17;

impl Ancestor {
    /// `ancestors` as `purchases.ancestors` keeps them (migration 0009): 17 bytes each,
    /// nearest first, the user's uuid and then 1 if active, 0 if not.
    pub fn encode_all(ancestors: &[Ancestor]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ancestors.len() * STORED_LEN);
        for a in ancestors {
            bytes.extend_from_slice(a.user_id.as_uuid().as_bytes());
            bytes.push(u8::from(a.active));
        }
        bytes
    }

    /// The inverse of `encode_all`; anything else is an error, never a guess.
    pub fn decode_all(bytes: &[u8]) -> anyhow::Result<Vec<Ancestor>> {
        anyhow::ensure!(
            bytes.len().is_multiple_of(STORED_LEN),
            "stored ancestors of {} bytes are not whole 17-byte records",
            bytes.len()
        );
        bytes
            .chunks_exact(STORED_LEN)
            .map(|record| {
                let (id, flag) = record.split_at(STORED_LEN - 1);
                let active = match flag {
                    [0] => false,
                    [1] => true,
                    other => anyhow::bail!("stored ancestor flag {other:?} is neither 0 nor 1"),
                };
                Ok(Ancestor {
                    user_id: UserId(uuid::Uuid::from_slice(id)?),
                    active,
                })
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserChange {
    Created {
        user: UserId,
        referrer: Option<UserId>,
    },
    Status {
        user: UserId,
        active: bool,
    },
    Moved {
        user: UserId,
        referrer: Option<UserId>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GraphError {
    #[error("user {0} is not in the graph")]
    UnknownUser(UserId),
    #[error("moving {0} under {1} would make a cycle")]
    Cycle(UserId, UserId),
    #[error("user {0} appears twice in the snapshot")]
    Duplicate(UserId),
}

#[derive(Clone, Default)]
pub struct ReferralGraph {
    graph: StableDiGraph<(UserId, bool), ()>,
    index: Index,
    /// The last `user_events.seq` applied.
    pub seq: i64,
}

impl ReferralGraph {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains(&self, user: UserId) -> bool {
        self.index.contains_key(&user)
    }

    pub fn is_active(&self, user: UserId) -> Option<bool> {
        self.index.get(&user).map(|&i| self.graph[i].1)
    }

    pub fn referrer(&self, user: UserId) -> Option<UserId> {
        let &i = self.index.get(&user)?;
        self.graph
            .neighbors_directed(i, Direction::Outgoing)
            .next()
            .map(|p| self.graph[p].0)
    }

    fn node(&mut self, user: UserId) -> NodeIndex {
        *self
            .index
            .entry(user)
            .or_insert_with(|| self.graph.add_node((user, true)))
    }

    pub fn apply(&mut self, change: &UserChange) -> Result<(), GraphError> {
        match *change {
            UserChange::Created { user, referrer } => {
                let child = self.node(user);
                if let Some(r) = referrer {
                    let parent = self.node(r);
                    self.set_parent(child, Some(parent));
                }
            }
            UserChange::Status { user, active } => {
                let &i = self.index.get(&user).ok_or(GraphError::UnknownUser(user))?;
                self.graph[i].1 = active;
            }
            UserChange::Moved { user, referrer } => {
                let &child = self.index.get(&user).ok_or(GraphError::UnknownUser(user))?;
                let parent = match referrer {
                    Some(r) => {
                        if r == user
                            || self
                                .ancestors(r, usize::MAX)
                                .iter()
                                .any(|a| a.user_id == user)
                        {
                            return Err(GraphError::Cycle(user, r));
                        }
                        Some(*self.index.get(&r).ok_or(GraphError::UnknownUser(r))?)
                    }
                    None => None,
                };
                self.set_parent(child, parent);
            }
        }
        Ok(())
    }

    fn set_parent(&mut self, child: NodeIndex, parent: Option<NodeIndex>) {
        let old: Vec<_> = self
            .graph
            .edges_directed(child, Direction::Outgoing)
            .map(|e| petgraph::visit::EdgeRef::id(&e))
            .collect();
        for e in old {
            self.graph.remove_edge(e);
        }
        if let Some(p) = parent {
            self.graph.add_edge(child, p, ());
        }
    }

    /// Ancestors nearest first, at most `max` of them. The graph has no cycles (Postgres
    /// and `apply` refuse them); the walk is bounded by the node count regardless.
    pub fn ancestors(&self, user: UserId, max: usize) -> Vec<Ancestor> {
        let mut out = Vec::new();
        let Some(&start) = self.index.get(&user) else {
            return out;
        };
        let mut at = start;
        while out.len() < max && out.len() <= self.index.len() {
            let Some(p) = self
                .graph
                .neighbors_directed(at, Direction::Outgoing)
                .next()
            else {
                break;
            };
            let (id, active) = self.graph[p];
            out.push(Ancestor {
                user_id: id,
                active,
            });
            at = p;
        }
        out
    }

    /// The ancestors a payout under `plan` needs: `levels` of them when inactive shares
    /// are skipped, or enough to find `levels` active ones when compressed.
    pub fn payout_ancestors(&self, user: UserId, plan: &Plan) -> Vec<Ancestor> {
        let levels = plan.levels();
        if plan.inactive_policy() != InactivePolicy::Compress {
            return self.ancestors(user, levels);
        }
        let all = self.ancestors(user, usize::MAX);
        let mut active = 0;
        let mut cut = all.len();
        for (i, a) in all.iter().enumerate() {
            if a.active {
                active += 1;
                if active == levels {
                    cut = i + 1;
                    break;
                }
            }
        }
        all[..cut].to_vec()
    }
}

/// A user as the `users` table holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub user: UserId,
    pub referrer: Option<UserId>,
    pub active: bool,
}

/// Builds a graph from a snapshot of `users`, a row at a time in any order (no replay of
/// each change: the processor's start reads one row per user instead of every event).
/// A row whose referrer has not arrived yet keeps its edge for `finish`.
pub struct Snapshot {
    graph: ReferralGraph,
    waiting: Vec<(NodeIndex, UserId)>,
}

impl Snapshot {
    /// `seq`: the `user_events` position the snapshot reflects; `users`: about how many
    /// rows will be added (room is made for them at once: growing by doubling copies the
    /// node, edge and index tables each time, and leaves the old ones behind as garbage).
    pub fn new(seq: i64, users: usize) -> Snapshot {
        let graph = ReferralGraph {
            seq,
            graph: StableDiGraph::with_capacity(users, users),
            index: Index::with_capacity_and_hasher(users, Default::default()),
        };
        Snapshot {
            graph,
            waiting: Vec::new(),
        }
    }

    pub fn add(&mut self, row: UserRow) -> Result<(), GraphError> {
        let g = &mut self.graph;
        // One probe for the check and the insert.
        let child = match g.index.entry(row.user) {
            Entry::Occupied(_) => return Err(GraphError::Duplicate(row.user)),
            Entry::Vacant(slot) => *slot.insert(g.graph.add_node((row.user, row.active))),
        };
        if let Some(r) = row.referrer {
            match g.index.get(&r) {
                Some(&parent) => {
                    g.graph.add_edge(child, parent, ());
                }
                None => self.waiting.push((child, r)),
            }
        }
        Ok(())
    }

    /// The graph, once every referrer is known and no referrer chain loops: anything else
    /// means the table is broken, an error rather than a partial graph.
    pub fn finish(mut self) -> Result<ReferralGraph, GraphError> {
        let g = &mut self.graph;
        for (child, r) in self.waiting {
            let &parent = g.index.get(&r).ok_or(GraphError::UnknownUser(r))?;
            g.graph.add_edge(child, parent, ());
        }
        if let Some(node) = on_a_cycle(&g.graph) {
            let (user, _) = g.graph[node];
            let referrer = g.referrer(user).unwrap_or(user);
            return Err(GraphError::Cycle(user, referrer));
        }
        Ok(self.graph)
    }
}

/// A user on a referrer cycle, if there is one. Each user has at most one referrer (one
/// outgoing edge), so following referrers from any user either ends at a root or comes
/// back to a user of the chain being followed; each user is walked once, and a chain stops
/// at the first user already known to end at a root. A byte of state a user, where
/// petgraph's general `toposort` kept bit sets, a stack and every edge's iterator (9 % of
/// the 10M-user load).
fn on_a_cycle(graph: &StableDiGraph<(UserId, bool), ()>) -> Option<NodeIndex> {
    use petgraph::visit::NodeIndexable;
    const UNSEEN: u8 = 0;
    const ON_CHAIN: u8 = 1;
    const ENDS_AT_ROOT: u8 = 2;
    let mut state = vec![UNSEEN; graph.node_bound()];
    let mut chain = Vec::new();
    for start in graph.node_indices() {
        let mut at = Some(start);
        while let Some(node) = at {
            match state[node.index()] {
                UNSEEN => {
                    state[node.index()] = ON_CHAIN;
                    chain.push(node);
                    at = graph.neighbors_directed(node, Direction::Outgoing).next();
                }
                ON_CHAIN => return Some(node),
                _ => break,
            }
        }
        for node in chain.drain(..) {
            state[node.index()] = ENDS_AT_ROOT;
        }
    }
    None
}

#[cfg(test)]
#[path = "graph_test.rs"]
mod tests;
