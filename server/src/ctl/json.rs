//! JSON output the way etcdctl's `-w json` writes it: Go's `encoding/json` over etcd's generated
//! Go structs. That means fields in struct order, `omitempty` on most protobuf fields, `[]byte`
//! as standard base64, 64-bit integers as bare numbers, and Go's string escaping (`<`, `>`, `&`
//! become `\u003c`...).

/// Builds one JSON object field by field.
#[derive(Debug, Default)]
pub struct Obj {
    parts: Vec<String>,
}

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj::default()
    }
    /// A field whose value is already JSON text.
    pub fn raw(&mut self, name: &str, json: String) -> &mut Obj {
        self.parts.push(format!("{}:{json}", string(name)));
        self
    }
    /// A field with an already-encoded value, left out when `None` (`omitempty` on a pointer).
    pub fn raw_opt(&mut self, name: &str, json: Option<String>) -> &mut Obj {
        if let Some(j) = json {
            self.raw(name, j);
        }
        self
    }
    /// An integer field.
    pub fn int(&mut self, name: &str, v: impl Into<i128>) -> &mut Obj {
        self.raw(name, v.into().to_string())
    }
    /// An integer field left out when zero.
    pub fn int_omit(&mut self, name: &str, v: impl Into<i128>) -> &mut Obj {
        let v = v.into();
        if v != 0 {
            self.raw(name, v.to_string());
        }
        self
    }
    /// A boolean field.
    pub fn bool(&mut self, name: &str, v: bool) -> &mut Obj {
        self.raw(name, v.to_string())
    }
    /// A boolean field left out when false.
    pub fn bool_omit(&mut self, name: &str, v: bool) -> &mut Obj {
        if v {
            self.bool(name, v);
        }
        self
    }
    /// A string field.
    pub fn str(&mut self, name: &str, v: &str) -> &mut Obj {
        self.raw(name, string(v))
    }
    /// A string field left out when empty.
    pub fn str_omit(&mut self, name: &str, v: &str) -> &mut Obj {
        if !v.is_empty() {
            self.str(name, v);
        }
        self
    }
    /// A bytes field (base64) left out when empty.
    pub fn bytes_omit(&mut self, name: &str, v: &[u8]) -> &mut Obj {
        if !v.is_empty() {
            self.raw(name, string(&base64(v)));
        }
        self
    }
    /// An array field of already-encoded items, left out when empty.
    pub fn array_omit(&mut self, name: &str, items: Vec<String>) -> &mut Obj {
        if !items.is_empty() {
            self.raw(name, array(items));
        }
        self
    }
    /// The finished object text.
    pub fn finish(&mut self) -> String {
        format!("{{{}}}", std::mem::take(&mut self.parts).join(","))
    }
}

/// A JSON array of already-encoded items.
pub fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

/// A JSON string literal with Go's escaping rules.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Standard base64 with padding (Go's `encoding/json` for `[]byte`).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn go_string_escaping() {
        assert_eq!(
            string("a\"b\\c\n<&>\u{1}é"),
            "\"a\\\"b\\\\c\\n\\u003c\\u0026\\u003e\\u0001é\""
        );
    }

    #[test]
    fn omitempty_and_flatten() {
        let mut o = Obj::new();
        o.int_omit("a", 0)
            .int_omit("b", 2u64)
            .str("s", "x")
            .bool_omit("f", false)
            .array_omit("e", vec![]);
        assert_eq!(o.finish(), "{\"b\":2,\"s\":\"x\"}");
    }
}
