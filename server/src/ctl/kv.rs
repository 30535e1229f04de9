//! `get`, `put`, `del` and `txn`: building the requests exactly as etcdctl's `getGetOp`,
//! `getPutOp`, `getDelOp` and the txn line parser do, so the server sees the same request.

use super::args::{self, parse_int_error, Invocation};
use super::error::{exit, CtlError};
use super::session::{failed, path, Session};
use super::Ctx;
use keel_net::proto::etcdserverpb::{
    compare, range_request, request_op, Compare, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, TxnRequest, TxnResponse,
};
use std::io::BufRead;

/// The end of the range covering every key with `prefix` (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(&last) = end.last() {
        if last < 0xff {
            *end.last_mut().expect("non-empty") += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

/// Builds the `RangeRequest` of `get` from its flags and arguments.
pub fn get_request(inv: &Invocation) -> Result<RangeRequest, CtlError> {
    let a = &inv.args;
    if a.is_empty() || a.len() > 2 {
        return Err(CtlError::bad_args(
            "get command needs one argument as key and an optional argument as range_end",
        ));
    }
    let prefix = inv.bool("prefix");
    let from_key = inv.bool("from-key");
    if prefix && from_key {
        return Err(CtlError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    let mut req = RangeRequest::default();
    match inv.string("consistency", "l").as_str() {
        "l" => {}
        "s" => req.serializable = true,
        other => {
            return Err(CtlError::bad_feature(format!(
                "unknown consistency flag {}",
                args::go_quote(other)
            )))
        }
    }
    let mut key = a[0].as_bytes().to_vec();
    if a.len() > 1 {
        if prefix || from_key {
            return Err(CtlError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        req.range_end = a[1].as_bytes().to_vec();
    }
    req.limit = inv.int("limit", 0)?;
    let rev = inv.int("rev", 0)?;
    if rev > 0 {
        req.revision = rev;
    }
    let order_flag = inv.string("order", "");
    let mut order = match order_flag.to_uppercase().as_str() {
        "ASCEND" => range_request::SortOrder::Ascend,
        "DESCEND" => range_request::SortOrder::Descend,
        "" => range_request::SortOrder::None,
        _ => {
            return Err(CtlError::bad_feature(format!(
                "bad sort order {order_flag}"
            )))
        }
    };
    let target_flag = inv.string("sort-by", "");
    let target = match target_flag.to_uppercase().as_str() {
        "CREATE" => range_request::SortTarget::Create,
        "KEY" | "" => range_request::SortTarget::Key,
        "MODIFY" => range_request::SortTarget::Mod,
        "VALUE" => range_request::SortTarget::Value,
        "VERSION" => range_request::SortTarget::Version,
        _ => {
            return Err(CtlError::bad_feature(format!(
                "bad sort target {target_flag}"
            )))
        }
    };
    // clientv3.WithSort: ascending by key is the server's natural order.
    if target == range_request::SortTarget::Key && order == range_request::SortOrder::Ascend {
        order = range_request::SortOrder::None;
    }
    req.sort_order = order as i32;
    req.sort_target = target as i32;
    if prefix {
        if key.is_empty() {
            key = vec![0];
            req.range_end = vec![0];
        } else {
            req.range_end = prefix_end(&key);
        }
    }
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        req.range_end = vec![0];
    }
    req.key = key;
    req.keys_only = inv.bool("keys-only");
    req.count_only = inv.bool("count-only");
    Ok(req)
}

/// Builds the `PutRequest` of `put`; `stdin_value` supplies the value when only a key is given.
pub fn put_request(
    inv: &Invocation,
    stdin_value: &mut dyn FnMut() -> Option<Vec<u8>>,
) -> Result<PutRequest, CtlError> {
    const NEEDS: &str = "put command needs 1 argument and input from stdin or 2 arguments";
    let a = &inv.args;
    if a.is_empty() {
        return Err(CtlError::bad_args(NEEDS));
    }
    let ignore_value = inv.bool("ignore-value");
    if ignore_value && a.len() > 1 {
        return Err(CtlError::bad_args(
            "put command needs only 1 argument when 'ignore-value' is set",
        ));
    }
    let mut req = PutRequest {
        key: a[0].as_bytes().to_vec(),
        ..Default::default()
    };
    if !ignore_value {
        req.value = match a.get(1) {
            Some(v) => v.as_bytes().to_vec(),
            None => stdin_value().ok_or_else(|| CtlError::bad_args(NEEDS))?,
        };
    }
    let lease = inv.string("lease", "0");
    req.lease = i64::from_str_radix(&lease, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad lease ID ({}), expecting ID in Hex",
            parse_int_error("ParseInt", &lease, 16)
        ))
    })?;
    req.prev_kv = inv.bool("prev-kv");
    req.ignore_value = ignore_value;
    req.ignore_lease = inv.bool("ignore-lease");
    Ok(req)
}

/// Builds the `DeleteRangeRequest` of `del`.
pub fn del_request(inv: &Invocation) -> Result<DeleteRangeRequest, CtlError> {
    let a = &inv.args;
    if a.is_empty() || a.len() > 2 {
        return Err(CtlError::bad_args(
            "del command needs one argument as key and an optional argument as range_end",
        ));
    }
    let prefix = inv.bool("prefix");
    let from_key = inv.bool("from-key");
    if prefix && from_key {
        return Err(CtlError::bad_args(
            "`--prefix` and `--from-key` cannot be set at the same time, choose one",
        ));
    }
    let mut req = DeleteRangeRequest::default();
    let mut key = a[0].as_bytes().to_vec();
    if a.len() > 1 {
        if prefix || from_key {
            return Err(CtlError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        req.range_end = a[1].as_bytes().to_vec();
    }
    if prefix {
        if key.is_empty() {
            key = vec![0];
            req.range_end = vec![0];
        } else {
            req.range_end = prefix_end(&key);
        }
    }
    if from_key {
        if key.is_empty() {
            key = vec![0];
        }
        req.range_end = vec![0];
    }
    req.key = key;
    req.prev_kv = inv.bool("prev-kv");
    Ok(req)
}

fn read_stdin_all() -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).ok()?;
    if buf.is_empty() {
        None
    } else {
        Some(buf)
    }
}

/// `keelctl get`.
pub fn get(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let req = get_request(inv)?;
    let mut s = ctx.connect()?;
    let resp: RangeResponse = s.call(path::RANGE, &req).map_err(|e| failed(None, &e))?;
    if req.count_only && ctx.printer.format == super::display::Format::Simple {
        super::display::outln(&resp.count.to_string());
        return Ok(());
    }
    let mut p = ctx.printer;
    p.value_only = inv.bool("print-value-only");
    p.get(&resp)
}

/// `keelctl put`.
pub fn put(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let req = put_request(inv, &mut read_stdin_all)?;
    let mut s = ctx.connect()?;
    let resp: PutResponse = s.call(path::PUT, &req).map_err(|e| failed(None, &e))?;
    ctx.printer.put(&resp)
}

/// `keelctl del`.
pub fn del(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    let req = del_request(inv)?;
    let mut s = ctx.connect()?;
    let resp: DeleteRangeResponse = s
        .call(path::DELETE_RANGE, &req)
        .map_err(|e| failed(None, &e))?;
    ctx.printer.del(&resp)
}

/// Splits a txn line into words the way etcdctl's `argify` does: double-quoted strings with Go
/// escapes, single-quoted strings verbatim, otherwise runs of non-space characters.
pub fn argify(line: &str) -> Result<Vec<String>, CtlError> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            let lit: String = chars[start..i].iter().collect();
            out.push(
                unquote(&lit).ok_or_else(|| {
                    CtlError::new(exit::INVALID_INPUT, "invalid syntax".to_string())
                })?,
            );
        } else if c == '\'' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            out.push(chars[start..i.min(chars.len())].iter().collect());
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

/// Go's `strconv.Unquote` for a double-quoted literal (the escapes that matter in practice).
pub fn unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            if c == '"' {
                return None;
            }
            out.push(c);
            continue;
        }
        match it.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'x' => {
                let h: String = it.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&h, 16).ok()? as char);
            }
            'u' => {
                let h: String = it.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Parses one compare line: `<target>("<key>") <op> "<value>"`, target one of
/// `ver|version`, `c|create`, `m|mod`, `val|value`, `lease`.
pub fn parse_compare(line: &str) -> Result<Compare, CtlError> {
    let malformed = || CtlError::new(exit::INVALID_INPUT, format!("malformed comparison: {line}"));
    let (target, rest) = line.split_once('(').ok_or_else(malformed)?;
    // %q) %s %q
    let rest = rest.trim_start();
    let (key, rest) = take_quoted(rest).ok_or_else(malformed)?;
    let rest = rest.strip_prefix(')').ok_or_else(malformed)?.trim_start();
    let op_end = rest.find(char::is_whitespace).ok_or_else(malformed)?;
    let op = &rest[..op_end];
    let (val, _) = take_quoted(rest[op_end..].trim_start()).ok_or_else(malformed)?;
    let result = match op {
        "=" => compare::CompareResult::Equal,
        "!=" => compare::CompareResult::NotEqual,
        ">" => compare::CompareResult::Greater,
        "<" => compare::CompareResult::Less,
        _ => {
            return Err(CtlError::new(
                exit::INVALID_INPUT,
                format!("malformed comparison: {line} (unknown op {op})"),
            ))
        }
    };
    let invalid = || {
        CtlError::new(
            exit::INVALID_INPUT,
            format!("invalid txn compare request: {line}"),
        )
    };
    let int = |radix: u32| i64::from_str_radix(&val, radix).map_err(|_| invalid());
    let (t, u) = match target {
        "ver" | "version" => (
            compare::CompareTarget::Version,
            compare::TargetUnion::Version(int(10)?),
        ),
        "c" | "create" => (
            compare::CompareTarget::Create,
            compare::TargetUnion::CreateRevision(int(10)?),
        ),
        "m" | "mod" => (
            compare::CompareTarget::Mod,
            compare::TargetUnion::ModRevision(int(10)?),
        ),
        "val" | "value" => (
            compare::CompareTarget::Value,
            compare::TargetUnion::Value(val.clone().into_bytes()),
        ),
        "lease" => (
            compare::CompareTarget::Lease,
            compare::TargetUnion::Lease(int(16)?),
        ),
        _ => {
            return Err(CtlError::new(
                exit::INVALID_INPUT,
                format!("malformed comparison: {line} (unknown target {target})"),
            ))
        }
    };
    Ok(Compare {
        result: result as i32,
        target: t as i32,
        key: key.into_bytes(),
        target_union: Some(u),
        range_end: Vec::new(),
    })
}

fn take_quoted(s: &str) -> Option<(String, &str)> {
    if !s.starts_with('"') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let lit = &s[..=i];
                return Some((unquote(lit)?, &s[i + 1..]));
            }
            _ => i += 1,
        }
    }
    None
}

/// Parses one op line of a txn (`put k v`, `get k --prefix`, `del k`).
pub fn parse_op(line: &str) -> Result<RequestOp, CtlError> {
    let words = argify(line)?;
    let invalid = || CtlError::new(exit::INVALID_INPUT, format!("invalid txn request: {line}"));
    if words.len() < 2 {
        return Err(CtlError::new(
            exit::INVALID_INPUT,
            format!("invalid txn compare request: {line}"),
        ));
    }
    let rest = &words[1..];
    let request = match words[0].as_str() {
        "put" => {
            let inv = args::parse_flags(rest, args::PUT_FLAGS).map_err(|_| invalid())?;
            request_op::Request::RequestPut(put_request(&inv, &mut || None)?)
        }
        "get" => {
            let inv = args::parse_flags(rest, args::GET_FLAGS).map_err(|_| invalid())?;
            request_op::Request::RequestRange(get_request(&inv)?)
        }
        "del" => {
            let inv = args::parse_flags(rest, args::DEL_FLAGS).map_err(|_| invalid())?;
            request_op::Request::RequestDeleteRange(del_request(&inv)?)
        }
        _ => return Err(invalid()),
    };
    Ok(RequestOp {
        request: Some(request),
    })
}

/// Reads lines until a blank one, parsing each as it comes; end of input before the blank line
/// is an error (`EOF`), as in etcdctl.
fn read_block<T>(
    input: &mut dyn BufRead,
    parse: impl Fn(&str) -> Result<T, CtlError>,
) -> Result<Vec<T>, CtlError> {
    let mut items = Vec::new();
    loop {
        let mut raw = Vec::new();
        let n = input
            .read_until(b'\n', &mut raw)
            .map_err(|e| CtlError::new(exit::INVALID_INPUT, e.to_string()))?;
        if n == 0 || raw.last() != Some(&b'\n') {
            return Err(CtlError::new(exit::INVALID_INPUT, "EOF"));
        }
        let line = String::from_utf8_lossy(&raw).trim().to_string();
        if line.is_empty() {
            return Ok(items);
        }
        items.push(parse(&line)?);
    }
}

/// Reads a whole txn in etcdctl's stdin format: compares, blank line, success ops, blank line,
/// failure ops, blank line. `prompt` prints the interactive prompts (`-i`).
pub fn read_txn(input: &mut dyn BufRead, prompt: bool) -> Result<TxnRequest, CtlError> {
    let say = |s: &str| {
        if prompt {
            super::display::outln(s)
        }
    };
    let mut req = TxnRequest::default();
    say("compares:");
    req.compare = read_block(input, parse_compare)?;
    say("success requests (get, put, del):");
    req.success = read_block(input, parse_op)?;
    say("failure requests (get, put, del):");
    req.failure = read_block(input, parse_op)?;
    Ok(req)
}

/// `keelctl txn`.
pub fn txn(ctx: &Ctx, inv: &Invocation) -> Result<(), CtlError> {
    if !inv.args.is_empty() {
        return Err(CtlError::bad_args("txn command does not accept argument"));
    }
    let stdin = std::io::stdin();
    let req = read_txn(&mut stdin.lock(), inv.bool("interactive"))?;
    let mut s: Session = ctx.connect()?;
    let resp: TxnResponse = s.call(path::TXN, &req).map_err(|e| failed(None, &e))?;
    ctx.printer.txn(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(words: &[&str], flags: &'static [args::FlagSpec]) -> Invocation {
        args::parse_flags(
            &words.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            flags,
        )
        .unwrap()
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"foo"), b"fop");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn get_requests_like_clientv3() {
        let r = get_request(&inv(&["", "--prefix"], args::GET_FLAGS)).unwrap();
        assert_eq!((r.key, r.range_end), (vec![0], vec![0]));
        let r = get_request(&inv(&["a", "--from-key", "--limit=2"], args::GET_FLAGS)).unwrap();
        assert_eq!((r.key, r.range_end, r.limit), (b"a".to_vec(), vec![0], 2));
        let r = get_request(&inv(
            &["a", "--sort-by=key", "--order=ascend"],
            args::GET_FLAGS,
        ))
        .unwrap();
        assert_eq!(r.sort_order, 0);
        let e = get_request(&inv(&["a", "--sort-by=x"], args::GET_FLAGS)).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (4, "bad sort target x"));
        let e = get_request(&inv(&[], args::GET_FLAGS)).unwrap_err();
        assert_eq!(e.code, 128);
        let e = get_request(&inv(&["a", "b", "--prefix"], args::GET_FLAGS)).unwrap_err();
        assert_eq!(e.code, 128);
    }

    #[test]
    fn put_requests() {
        let r = put_request(
            &inv(&["k", "v", "--lease=1f"], args::PUT_FLAGS),
            &mut || None,
        )
        .unwrap();
        assert_eq!(r.lease, 0x1f);
        let e = put_request(
            &inv(&["k", "v", "--lease=zz"], args::PUT_FLAGS),
            &mut || None,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex"
        );
        let r = put_request(&inv(&["k"], args::PUT_FLAGS), &mut || Some(b"in".to_vec())).unwrap();
        assert_eq!(r.value, b"in");
        assert!(put_request(&inv(&["k"], args::PUT_FLAGS), &mut || None).is_err());
    }

    #[test]
    fn txn_parsing() {
        let input = "value(\"k1\") = \"v 1\"\nmod(\"k1\") > \"0\"\n\nput k2 \"a b\"\nget k --prefix\n\ndel k9\n\n";
        let t = read_txn(&mut input.as_bytes(), false).unwrap();
        assert_eq!(t.compare.len(), 2);
        assert_eq!(
            t.compare[0].target_union,
            Some(compare::TargetUnion::Value(b"v 1".to_vec()))
        );
        assert_eq!(t.compare[1].result, compare::CompareResult::Greater as i32);
        assert_eq!(t.success.len(), 2);
        match &t.success[0].request {
            Some(request_op::Request::RequestPut(p)) => assert_eq!(p.value, b"a b"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.failure.len(), 1);
        // Missing final blank line: EOF, exit 3.
        let e = read_txn(&mut "\n\nput a b\n".as_bytes(), false).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (3, "EOF"));
        let e = read_txn(&mut "bad\n".as_bytes(), false).unwrap_err();
        assert_eq!(e.message, "malformed comparison: bad");
        let e = read_txn(&mut "\nfrob x\n\n\n".as_bytes(), false).unwrap_err();
        assert_eq!(e.message, "invalid txn request: frob x");
    }

    #[test]
    fn argify_quotes() {
        assert_eq!(
            argify(r#"put 'a b' "c\"d" e"#).unwrap(),
            vec!["put", "a b", "c\"d", "e"]
        );
    }
}
