//! Native stand-in for the host imports, used on every target other than `wasm32`.
//!
//! It keeps a pending response like the real host does, and every call fails with
//! `INTERNAL` and the JSON error "sandbox-sdk: not running inside the Sandbox host". This
//! lets the SDK and a module's pure code compile and run natively (unit tests, clippy).
//! Under `cfg(test)` the SDK's own tests can install a scripted host instead.

use std::cell::RefCell;

use crate::abi;

/// The JSON error response of every call outside the Sandbox host.
const NOT_IN_HOST: &str =
    r#"{"kind":"internal","message":"sandbox-sdk: not running inside the Sandbox host"}"#;

/// One call to the host, as seen by a scripted test host.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Call {
    Query(String),
    QueryWith(String, f64),
    Params,
    Emit {
        kind: i32,
        name: String,
        data: Vec<u8>,
    },
    Log {
        level: i32,
        message: String,
    },
}

/// A scripted host: returns the status and, when it is non-empty or the status is not OK,
/// the new pending response.
#[cfg(test)]
type MockHost = Box<dyn FnMut(Call) -> (i32, Vec<u8>)>;

#[derive(Default)]
struct State {
    pending: Option<Vec<u8>>,
    #[cfg(test)]
    mock: Option<MockHost>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Installs a scripted host for the current thread (tests only).
#[cfg(test)]
pub(crate) fn set_mock_host(mock: impl FnMut(Call) -> (i32, Vec<u8>) + 'static) {
    STATE.with_borrow_mut(|s| {
        s.pending = None;
        s.mock = Some(Box::new(mock));
    });
}

/// Dispatches one data-producing or staging call.
#[cfg_attr(not(test), allow(unused_variables))]
fn call(call: Call) -> i32 {
    STATE.with_borrow_mut(|s| {
        #[cfg(test)]
        if let Some(mock) = s.mock.as_mut() {
            let (status, response) = mock(call);
            if status != abi::STATUS_OK || !response.is_empty() {
                s.pending = Some(response);
            }
            return status;
        }
        s.pending = Some(NOT_IN_HOST.as_bytes().to_vec());
        abi::STATUS_INTERNAL
    })
}

/// Replaces the pending response with a JSON error, as the host does on any failure.
fn fail(status: i32, message: &str) -> i32 {
    let body = serde_json::json!({"kind": "invalid", "message": message}).to_string();
    STATE.with_borrow_mut(|s| s.pending = Some(body.into_bytes()));
    status
}

pub(crate) fn response_len() -> usize {
    STATE.with_borrow(|s| s.pending.as_ref().map_or(0, Vec::len))
}

pub(crate) fn response_read(buf: &mut [u8]) -> i32 {
    let pending = STATE.with_borrow_mut(|s| s.pending.take());
    match pending {
        None => fail(abi::STATUS_NO_RESPONSE, "no pending response"),
        Some(p) if p.len() != buf.len() => fail(
            abi::STATUS_INVALID_ARGUMENT,
            "length does not match the pending response",
        ),
        Some(p) => {
            buf.copy_from_slice(&p);
            abi::STATUS_OK
        }
    }
}

pub(crate) fn query(sql: &str) -> i32 {
    call(Call::Query(sql.to_owned()))
}

pub(crate) fn query_with(sql: &str, epsilon: f64) -> i32 {
    call(Call::QueryWith(sql.to_owned(), epsilon))
}

pub(crate) fn params() -> i32 {
    call(Call::Params)
}

pub(crate) fn emit(kind: i32, name: &str, data: &[u8]) -> i32 {
    call(Call::Emit {
        kind,
        name: name.to_owned(),
        data: data.to_vec(),
    })
}

pub(crate) fn log(level: i32, message: &str) -> i32 {
    call(Call::Log {
        level,
        message: message.to_owned(),
    })
}
