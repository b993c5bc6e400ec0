//! ListTransactions: the transactional ids this coordinator knows, filtered
//! by state name, producer id, (v1, KIP-994) how long the transaction has
//! been open and (v2, KIP-1152) a regular expression the whole id must
//! match. State names Runnel does not know come back in
//! `unknown_state_filters`. An id without an open transaction never passes a
//! duration filter. A pattern that does not compile gets
//! INVALID_REGULAR_EXPRESSION.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::{ListTransactionsResponse, TransactionState};
use kafka_protocol::messages::{ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handler::now_ms;
use crate::txn::state::TxnState as State;

pub fn handle(broker: &Broker, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let pattern = match req.transactional_id_pattern.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match regex_automata::meta::Regex::new(&format!("^(?:{p})$")) {
            Ok(compiled) => Some(compiled),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
    };
    let (known, unknown): (Vec<_>, Vec<_>) =
        req.state_filters.into_iter().partition(|name| State::from_name(name).is_some());
    let states: Vec<State> = known.iter().filter_map(|name| State::from_name(name)).collect();
    let pids: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let now = now_ms();
    let listed = broker
        .txns
        .list()
        .into_iter()
        .filter(|m| states.is_empty() || states.contains(&m.state))
        .filter(|m| pids.is_empty() || pids.contains(&m.producer_id))
        .filter(|m| req.duration_filter < 0 || (m.start_ms >= 0 && now - m.start_ms >= req.duration_filter))
        .filter(|m| pattern.as_ref().is_none_or(|p| p.is_match(&m.transactional_id)))
        .map(|m| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(StrBytes::from_static_str(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(listed)
}
