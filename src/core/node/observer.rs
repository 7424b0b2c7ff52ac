//! Turns what the router decides into node events: exclusions, readmissions, recoveries
//! and refused receipts.

use std::sync::Weak;

use super::handle::Core;
use super::types::{CoreEvent, RejectionRow};
use crate::core::router::selection::Effect;
use crate::core::router::{ReceiptRejection, RouterObserver};

/// Holds the core weakly: the router it observes belongs to the core.
pub(super) struct Observer(pub Weak<Core>);

impl RouterObserver for Observer {
    fn effects(&self, effects: &[Effect]) {
        let Some(core) = self.0.upgrade() else {
            return;
        };
        for effect in effects {
            let event = match effect {
                Effect::Excluded {
                    peer,
                    until_ms,
                    reason,
                } => CoreEvent::PeerExcluded {
                    pubkey: peer.to_string(),
                    reason: reason.clone(),
                    until_ms: *until_ms,
                },
                Effect::Readmitted { peer } => CoreEvent::PeerReadmitted {
                    pubkey: peer.to_string(),
                },
                // Back to full health: the peer row changes, nothing else.
                Effect::Restored { .. } => CoreEvent::PeersChanged,
                Effect::Forgotten { .. } => continue,
            };
            core.publish(event);
        }
    }

    fn receipt_rejected(&self, r: &ReceiptRejection) {
        if let Some(core) = self.0.upgrade() {
            core.publish(CoreEvent::ReceiptRejected {
                rejection: RejectionRow {
                    at_ms: r.at_ms,
                    peer: r.peer.to_string(),
                    reason: r.reason.clone(),
                    detail: r.detail.clone(),
                },
            });
        }
    }
}
