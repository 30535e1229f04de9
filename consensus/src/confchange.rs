//! Membership changes, one server at a time (thesis §4.1), with learners (thesis §4.2.1).
//!
//! Adding or removing a single voter changes the majority size by at most one, so every
//! majority of the old configuration overlaps every majority of the new one: the two cannot
//! make independent decisions, and no joint configuration is needed. Like etcd, a change
//! takes effect when its entry is *applied*, and the leader allows only one unapplied change
//! at a time (see `Raft::propose`), which keeps consecutive configurations one step apart.

use crate::errors::Error;
use crate::types::{ConfChange, ConfChangeType, ConfState};

/// The configuration that results from applying `cc` to `cs`, or why `cc` is invalid.
pub fn apply(cs: &ConfState, cc: &ConfChange) -> Result<ConfState, Error> {
    let id = cc.node_id;
    if id == 0 {
        return Err(Error::ConfChangeInvalid("node id 0 is reserved".into()));
    }
    let mut voters = cs.voters.clone();
    let mut learners = cs.learners.clone();
    let is_voter = voters.contains(&id);
    let is_learner = learners.contains(&id);
    match cc.change_type {
        ConfChangeType::AddNode => {
            if is_voter {
                return Err(Error::ConfChangeInvalid(format!("{id} is already a voter")));
            }
            // Adding a learner's id as a voter promotes it.
            learners.retain(|&l| l != id);
            voters.push(id);
        }
        ConfChangeType::AddLearner => {
            if is_voter {
                return Err(Error::ConfChangeInvalid(format!(
                    "{id} is a voter; demoting a voter to learner is not supported"
                )));
            }
            if is_learner {
                return Err(Error::ConfChangeInvalid(format!(
                    "{id} is already a learner"
                )));
            }
            learners.push(id);
        }
        ConfChangeType::RemoveNode => {
            if !is_voter && !is_learner {
                return Err(Error::ConfChangeInvalid(format!("{id} is not a member")));
            }
            if is_voter && voters.len() == 1 {
                return Err(Error::ConfChangeInvalid(
                    "cannot remove the last voter".into(),
                ));
            }
            voters.retain(|&v| v != id);
            learners.retain(|&l| l != id);
        }
    }
    voters.sort_unstable();
    learners.sort_unstable();
    Ok(ConfState { voters, learners })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(t: ConfChangeType, id: u64) -> ConfChange {
        ConfChange {
            change_type: t,
            node_id: id,
            context: Vec::new(),
        }
    }

    #[test]
    fn add_learner_then_promote_then_remove() {
        let cs = ConfState::with_voters(&[1, 2, 3]);
        let cs = apply(&cs, &cc(ConfChangeType::AddLearner, 4)).unwrap();
        assert_eq!(cs.learners, vec![4]);
        let cs = apply(&cs, &cc(ConfChangeType::AddNode, 4)).unwrap();
        assert_eq!(cs.voters, vec![1, 2, 3, 4]);
        assert!(cs.learners.is_empty());
        let cs = apply(&cs, &cc(ConfChangeType::RemoveNode, 1)).unwrap();
        assert_eq!(cs.voters, vec![2, 3, 4]);
    }

    #[test]
    fn invalid_changes_are_typed_errors() {
        let cs = ConfState::with_voters(&[1]);
        assert!(apply(&cs, &cc(ConfChangeType::RemoveNode, 1)).is_err());
        assert!(apply(&cs, &cc(ConfChangeType::RemoveNode, 9)).is_err());
        assert!(apply(&cs, &cc(ConfChangeType::AddNode, 1)).is_err());
        assert!(apply(&cs, &cc(ConfChangeType::AddLearner, 1)).is_err());
        assert!(apply(&cs, &cc(ConfChangeType::AddNode, 0)).is_err());
    }
}
