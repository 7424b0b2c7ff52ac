//! The ledger: verified receipts in redb, with per-pubkey balances and totals kept in
//! the same transaction as each append, so reading a balance never scans the log and a
//! replayed nonce is caught even after a restart.

mod accept;
mod bytes;
mod confirm_record;
mod expiry;
mod io;
mod keys;
mod migrate;
mod owed;
mod reads;
mod record;
mod requests;
mod schema;
mod standing;
mod verify;
mod writer;

use std::collections::HashMap;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::core::protocol::{PublicKey, SignedConfirmation, SignedReceipt};
use crate::core::store::{Db, StoreError};

pub use accept::{
    AcceptRules, OwnReceipt, Party, RejectReason, Rejection, Verified, accept, sign_own,
};
pub use expiry::SETTLE_WINDOW_MS;
pub use io::{ImportReport, export_jsonl, import_jsonl};
pub use owed::{MAX_OWED_RECEIPTS, Owed, OwedReport};
pub use requests::Unsettled;
pub use schema::{
    BALANCES, CONFIRMATIONS, CONFIRMED_BY, LEDGER_META, NONCES, NonceKey, RECEIPTS, UNCONFIRMED,
    UNCONFIRMED_BALANCES,
};
pub use standing::{ConfirmOutcome, Standing, Unconfirmed};
pub use verify::{VerifyProgress, VerifyReport, verify_ledger, verify_ledger_with};
pub use writer::{LedgerWriter, WriterClosed};

use schema::receipt_key;

/// Every identity starts with this many tokens of credit.
pub const ALLOWANCE_TOKENS: i64 = 10_000;

/// One identity's standing in this ledger. `earned` and `spent` count every receipt;
/// the `pending_*` and `anonymous_spent` parts of them are not settled yet (see
/// [`Standing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub pubkey: PublicKey,
    pub earned: u64,
    pub spent: u64,
    pub receipts: u64,
    /// Earned on receipts the requester has not counter-signed (pending or anonymous).
    pub pending_earned: u64,
    /// Spent on signed requests whose receipts this side has not seen confirmed.
    pub pending_spent: u64,
    /// Never charged: named as requester on unsigned requests, or on receipts that
    /// expired unconfirmed.
    pub anonymous_spent: u64,
}

impl Balance {
    pub fn empty(pubkey: PublicKey) -> Self {
        Balance {
            pubkey,
            earned: 0,
            spent: 0,
            receipts: 0,
            pending_earned: 0,
            pending_spent: 0,
            anonymous_spent: 0,
        }
    }

    fn with_unconfirmed(mut self, u: Unconfirmed) -> Self {
        self.pending_earned = u.earned.min(self.earned);
        self.pending_spent = u.spent_pending.min(self.spent);
        self.anonymous_spent = u.spent_anonymous.min(self.spent - self.pending_spent);
        self
    }

    /// Earnings the requesters have confirmed.
    pub fn confirmed_earned(&self) -> u64 {
        self.earned - self.pending_earned
    }

    /// What this identity is charged with: pending spending counts (it was served),
    /// anonymous spending does not (anyone could have named it).
    pub fn charged_spent(&self) -> u64 {
        self.spent - self.anonymous_spent
    }

    /// Confirmed earnings minus charged spending, clamped to the i64 range (hostile
    /// receipts can carry huge counts; the sign must never wrap).
    pub fn net(&self) -> i64 {
        let net = i128::from(self.confirmed_earned()) - i128::from(self.charged_spent());
        net.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    pub fn available(&self) -> i64 {
        ALLOWANCE_TOKENS.saturating_add(self.net())
    }
}

/// Ledger-wide totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub receipts: u64,
    pub tokens: u64,
}

/// A receipt with its position in this ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReceipt {
    pub seq: u64,
    pub receipt: SignedReceipt,
}

/// What happened to one receipt handed to `append`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended {
        seq: u64,
    },
    /// The nonce is already in the ledger (a replay or a re-import), or the request it
    /// answers already has a receipt here.
    Duplicate {
        existing_seq: u64,
    },
}

/// The ledger over one database.
#[derive(Clone)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    /// Opens the ledger, creating its tables on first use and converting those of an
    /// older schema (see `migrate`), in one transaction.
    pub fn new(db: Db) -> Result<Self, StoreError> {
        if let Db::Writable(_) = db {
            let tx = db.begin_write()?;
            migrate::upgrade(&tx)?;
            tx.open_table(RECEIPTS)?;
            tx.open_table(NONCES)?;
            tx.open_table(BALANCES)?;
            tx.open_table(LEDGER_META)?;
            tx.open_table(UNCONFIRMED)?;
            tx.open_table(UNCONFIRMED_BALANCES)?;
            tx.open_table(CONFIRMED_BY)?;
            tx.open_table(CONFIRMATIONS)?;
            tx.open_table(schema::ANSWERED)?;
            tx.open_table(schema::PROOFS)?;
            tx.open_table(keys::KEYS)?;
            tx.open_table(keys::KEY_IDS)?;
            tx.commit()?;
        }
        Ok(Ledger { db })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether `tx` sees the first schema: only a read-only open can (a writable one
    /// converts it in `new`), so a writable ledger never pays for the look.
    fn old_schema(&self, tx: &redb::ReadTransaction) -> Result<bool, StoreError> {
        match self.db {
            Db::Writable(_) => Ok(false),
            Db::ReadOnly(_) => migrate::is_old(tx),
        }
    }

    /// Appends verified receipts in one durable transaction; a nonce already present
    /// (or repeated within the batch) is reported as a duplicate and changes nothing.
    ///
    /// Token sums saturate at `u64::MAX`: each receipt may carry up to 2^54 tokens, so about
    /// a thousand hostile receipts could otherwise overflow a total (a panic in debug builds,
    /// a wrap to a small number in release). `verify_ledger` sums the same way.
    pub fn append(&self, receipts: &[Verified]) -> Result<Vec<AppendOutcome>, StoreError> {
        let tx = self.db.begin_write()?;
        let outcomes = Self::append_in(&tx, receipts)?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// `append` inside a transaction the caller commits: for a job whose change of state
    /// and receipt must become durable together or not at all.
    pub fn append_in(
        tx: &redb::WriteTransaction,
        receipts: &[Verified],
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(receipts.len());
        {
            let mut log = tx.open_table(RECEIPTS)?;
            let mut nonces = tx.open_table(NONCES)?;
            let mut answered = tx.open_table(schema::ANSWERED)?;
            let mut keys = keys::KeyTables::open(tx)?;
            let mut balances = tx.open_table(BALANCES)?;
            let mut meta = tx.open_table(LEDGER_META)?;
            let mut next_seq = read_meta(&meta, "next_seq")?.max(1);
            let mut totals = Totals {
                receipts: read_meta(&meta, "receipts")?,
                tokens: read_meta(&meta, "tokens")?,
            };
            let mut touched: HashMap<String, (u64, u64, u64)> = HashMap::new();
            for verified in receipts {
                let signed = verified.signed();
                let r = signed.receipt();
                // Accepted receipts have a 32-hex nonce (v1 requires it).
                let Some(key) = receipt_key(&r.nonce) else {
                    return Err(StoreError::Corrupt(format!(
                        "a verified receipt has the nonce {:?}, not 32 hex",
                        r.nonce
                    )));
                };
                let request_key = verified.request().map(|p| schema::request_key(&p.nonce));
                let existing = match nonces.get(key)? {
                    Some(seq) => Some(seq.value()),
                    None => match request_key {
                        Some(k) => answered.get(k)?.map(|g| g.value()),
                        None => None,
                    },
                };
                if let Some(existing_seq) = existing {
                    outcomes.push(AppendOutcome::Duplicate { existing_seq });
                    continue;
                }
                let seq = next_seq;
                next_seq += 1;
                nonces.insert(key, seq)?;
                log.insert(seq, record::encode(signed, &mut keys)?.as_slice())?;
                standing::record(tx, signed, seq, verified.standing())?;
                if let (Some(proof), Some(k)) = (verified.request(), request_key) {
                    answered.insert(k, seq)?;
                    requests::record(tx, proof, seq, verified.standing())?;
                }
                let tokens = r.total_tokens();
                let worker = r.worker_pubkey.to_string();
                let requester = r.requester_pubkey.to_string();
                let mut bump = |key: String, earned: u64, spent: u64| -> Result<(), StoreError> {
                    let entry = match touched.get(&key) {
                        Some(v) => *v,
                        None => balances
                            .get(key.as_str())?
                            .map(|g| g.value())
                            .unwrap_or((0, 0, 0)),
                    };
                    touched.insert(
                        key,
                        (
                            entry.0.saturating_add(earned),
                            entry.1.saturating_add(spent),
                            entry.2 + 1,
                        ),
                    );
                    Ok(())
                };
                if worker == requester {
                    bump(worker, tokens, tokens)?;
                } else {
                    bump(worker, tokens, 0)?;
                    bump(requester, 0, tokens)?;
                }
                totals.receipts += 1;
                totals.tokens = totals.tokens.saturating_add(tokens);
                outcomes.push(AppendOutcome::Appended { seq });
            }
            for (key, value) in &touched {
                balances.insert(key.as_str(), *value)?;
            }
            meta.insert("next_seq", next_seq)?;
            meta.insert("receipts", totals.receipts)?;
            meta.insert("tokens", totals.tokens)?;
        }
        Ok(outcomes)
    }

    /// The standing of `pubkey` (all zeros if it never appeared).
    pub fn balance(&self, pubkey: &PublicKey) -> Result<Balance, StoreError> {
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(BALANCES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Balance::empty(*pubkey)),
            Err(e) => return Err(e.into()),
        };
        let key = pubkey.to_string();
        let gross = match table.get(key.as_str())? {
            Some(v) => {
                let (earned, spent, receipts) = v.value();
                Balance {
                    earned,
                    spent,
                    receipts,
                    ..Balance::empty(*pubkey)
                }
            }
            None => return Ok(Balance::empty(*pubkey)),
        };
        let unconfirmed = match open_existing(&tx, UNCONFIRMED_BALANCES)? {
            Some(t) => standing::unconfirmed_of(&t, &key)?,
            None => Unconfirmed::default(),
        };
        Ok(gross.with_unconfirmed(unconfirmed))
    }

    /// Settles the receipts a requester's confirmation names, for the worker `me`, in one
    /// durable transaction. The caller has verified the confirmation's signature.
    pub fn confirm(
        &self,
        confirmation: &SignedConfirmation,
        me: &PublicKey,
    ) -> Result<Vec<ConfirmOutcome>, StoreError> {
        let tx = self.db.begin_write()?;
        let outcomes = standing::confirm(&tx, confirmation, me)?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// Every identity that appears in the ledger, by pubkey.
    pub fn balances(&self) -> Result<Vec<Balance>, StoreError> {
        let tx = self.db.begin_read()?;
        let Some(table) = open_existing(&tx, BALANCES)? else {
            return Ok(Vec::new());
        };
        let unconfirmed = open_existing(&tx, UNCONFIRMED_BALANCES)?;
        let mut out = Vec::with_capacity(table.len()? as usize);
        for row in table.iter()? {
            let (k, v) = row?;
            let (earned, spent, receipts) = v.value();
            // Keys are written only from parsed public keys; skip anything else rather
            // than fail a whole listing.
            if let Ok(pubkey) = PublicKey::parse(k.value()) {
                let gross = Balance {
                    earned,
                    spent,
                    receipts,
                    ..Balance::empty(pubkey)
                };
                let u = match &unconfirmed {
                    Some(t) => standing::unconfirmed_of(t, k.value())?,
                    None => Unconfirmed::default(),
                };
                out.push(gross.with_unconfirmed(u));
            }
        }
        Ok(out)
    }

    pub fn totals(&self) -> Result<Totals, StoreError> {
        let tx = self.db.begin_read()?;
        let Some(meta) = open_existing(&tx, LEDGER_META)? else {
            return Ok(Totals::default());
        };
        Ok(Totals {
            receipts: read_meta(&meta, "receipts")?,
            tokens: read_meta(&meta, "tokens")?,
        })
    }
}

pub(super) fn open_existing<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn read_meta<T: ReadableTable<&'static str, u64>>(
    table: &T,
    key: &str,
) -> Result<u64, StoreError> {
    Ok(table.get(key)?.map(|v| v.value()).unwrap_or(0))
}
