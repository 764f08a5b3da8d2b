//! Entry point for the fuzz targets (`crates/fuzzing`, behind the `fuzzing` feature): every
//! way the adapter reads the bytes of an answer, without a network.

use serde::de::DeserializeOwned;
use serde_json::Value;
use webriskops_ports::{Checklist, Container, Destination, Label, PortError};

use crate::catalog::{self, Op};
use crate::errors::{map_status, Redactor};
use crate::transport::Call;
use crate::wire::{WBoard, WCard, WChecklist, WLabel, WList, WMember, WToken};
use crate::{batch_element, decode};

/// The routes whose answers the adapter decodes, with the context an error names.
const ROUTES: &[Op] = &[
    catalog::WHOAMI,
    catalog::TOKEN_INFO,
    catalog::BOARD,
    catalog::BOARD_LISTS,
    catalog::BOARD_CARDS,
    catalog::CARD_CREATE,
    catalog::REVOKE,
];

fn call(op: Op) -> Call {
    let args: Vec<&str> = op
        .template
        .matches('{')
        .map(|_| "5f0c0ffee0c0ffee0c0ffee0")
        .collect();
    Call::new(op, &args)
}

/// Reads `body` as the answer `status` to each route the adapter decodes, the way the
/// adapter does, and returns every message that would reach a person or a log: the error
/// of a non-2xx answer, and the decode error (or nothing) of a 2xx one for each decoded
/// shape. `secrets` are the key and token the redactor hides.
pub fn read_answer(status: u16, body: &[u8], secrets: &[&str]) -> Vec<String> {
    let redactor = Redactor::new(secrets);
    let mut messages = Vec::new();
    if !(200..300).contains(&status) {
        for op in ROUTES {
            let c = call(*op);
            messages.push(map_status(status, body, &c.context(), &redactor, None).to_string());
        }
        return messages;
    }
    let c = call(catalog::BOARD_CARDS);
    let results = [
        decode::<Vec<WCard>>(&c, body, &redactor)
            .and_then(|cards| cards.into_iter().try_for_each(|w| w.item().map(drop))),
        shape::<Vec<WList>>(&c, body, &redactor, |v| {
            v.into_iter().for_each(|l| drop(Destination::from(l)));
        }),
        shape::<WBoard>(&c, body, &redactor, |b| drop(Container::from(b))),
        shape::<Vec<WLabel>>(&c, body, &redactor, |v| {
            v.into_iter().for_each(|l| drop(Label::from(l)));
        }),
        shape::<Vec<WChecklist>>(&c, body, &redactor, |v| {
            v.into_iter().for_each(|l| drop(Checklist::from(l)));
        }),
        shape::<WMember>(&c, body, &redactor, |m| drop(m.account())),
        shape::<WToken>(&c, body, &redactor, |t| drop(t.info())),
    ];
    messages.extend(
        results
            .into_iter()
            .filter_map(Result::err)
            .map(|e| e.to_string()),
    );
    let batch = call(catalog::BATCH);
    match decode::<Vec<Value>>(&batch, body, &redactor) {
        Ok(answers) => messages.extend(
            answers
                .into_iter()
                .filter_map(|a| batch_element(&batch, a, &redactor).err())
                .map(|e| e.to_string()),
        ),
        Err(e) => messages.push(e.to_string()),
    }
    messages
}

fn shape<T: DeserializeOwned>(
    c: &Call,
    body: &[u8],
    redactor: &Redactor,
    use_it: impl FnOnce(T),
) -> Result<(), PortError> {
    decode::<T>(c, body, redactor).map(use_it)
}
