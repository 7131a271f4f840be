//! JSON body, path and query extractors whose rejections are problem+json with the field named.
use axum::{
    extract::{FromRequest, FromRequestParts, RawPathParams, Request, rejection::PathRejection},
    http::{StatusCode, header, request::Parts},
};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body. Malformed JSON is a 400; well-formed JSON of the wrong shape (wrong
/// type, missing or unknown field, bad enum value) is a 422 naming the field; a body over the
/// limit is a 413; a non-JSON content type is a 415.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request(None, rejection.body_text())
            }
        })?;
        decode_json(&bytes).map(Json)
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"))
}

/// Decodes a JSON body, telling syntax errors (400) from shape errors (422 with the field path).
/// A NUL character in any string (PostgreSQL's text cannot hold one) is a 422 naming its field.
/// Numbers with a zero fraction (`3.0`) count as integers, as JSON Schema says they are.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|err| ApiError::bad_request(None, format!("malformed JSON: {err}")))?;
    // Every request body of this API is an object. serde would also read a struct from an array
    // of its fields in order (`[]` as a PATCH that changes nothing), which the schema does not allow.
    if !value.is_object() {
        return Err(ApiError::validation("body", "must be a JSON object"));
    }
    if let Some(field) = nul_path(&value, String::new()) {
        return Err(nul_problem(field));
    }
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = field_of(&path, &message);
        ApiError::validation(field, strip_position(&message))
    })
}

/// Rewrites every number with a zero fraction that fits an `i64` (`3.0`, `-0.0`) as that integer.
fn integral_floats_to_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            if let Some(float) = number.as_f64()
                && float.fract() == 0.0
                && (-9.223_372_036_854_775e18..9.223_372_036_854_775e18).contains(&float)
            {
                let integer = float as i64;
                *value = serde_json::Value::from(integer);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// The field a shape error is about: its path, or for an unknown field the field's own name.
fn field_of(path: &str, message: &str) -> String {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    if let Some(name) = named {
        // serde_path_to_error already ends the path with an unknown key, not with a missing one.
        return match path {
            "." | "" => name.to_owned(),
            p if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
            parent => format!("{parent}.{name}"),
        };
    }
    if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Path parameters; an unparsable one (e.g. `/users/abc`) is a 400 naming the parameter.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                // A single value (`Path<i64>`) fails without a key; name the route's only parameter.
                let only_param = match RawPathParams::from_request_parts(parts, state).await {
                    Ok(params) => match params.iter().collect::<Vec<_>>().as_slice() {
                        [(name, value)] => Some(((*name).to_owned(), (*value).to_owned())),
                        _ => None,
                    },
                    Err(_) => None,
                };
                // `7.0` is the integer 7 (JSON Schema says so; clients that print numbers as
                // floats send it).
                if let Some(value) = only_param.as_ref().and_then(|(_, raw)| integral_decimal(raw))
                    && let Ok(value) = serde_json::from_value::<T>(serde_json::Value::from(value))
                {
                    return Ok(Path(value));
                }
                Err(path_problem(&rejection, only_param.map(|(name, _)| name)))
            }
        }
    }
}

/// `-12.000` -> -12: a decimal whose fraction is all zeros, as an integer.
fn integral_decimal(raw: &str) -> Option<i64> {
    let (whole, fraction) = raw.split_once('.')?;
    if fraction.is_empty() || !fraction.bytes().all(|b| b == b'0') {
        return None;
    }
    whole.parse().ok()
}

fn path_problem(rejection: &PathRejection, only_param: Option<String>) -> ApiError {
    use axum::extract::path::ErrorKind;
    let field = match rejection {
        PathRejection::FailedToDeserializePathParams(err) => match err.kind() {
            ErrorKind::ParseErrorAtKey { key, .. }
            | ErrorKind::InvalidUtf8InPathParam { key }
            | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
            _ => only_param,
        },
        _ => None,
    };
    ApiError::bad_request(field, rejection.body_text())
}

/// Query parameters; a value of the wrong type is a 400 naming the parameter. Names it does not
/// know are skipped here, so several `Query` extractors can read one query string; a name no
/// extractor of the route takes was already refused by `known_query::guard`.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        decode_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Decodes a query string into `T`, naming the parameter at fault. A NUL character in a
/// parameter is a 422 naming it, as in a body.
pub fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(nul_problem(name.replace('\0', "\\0")));
    }
    let mut query = std::borrow::Cow::Borrowed(query);
    loop {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let err = match serde_path_to_error::deserialize(de) {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let path = err.path().to_string();
        // A number written as an integral decimal (`assigneeId=5.0`) where an integer is wanted is
        // that integer, as `5.0` is in a JSON body and in the OpenAPI document's JSON Schema. Each
        // round rewrites one parameter's values, so this ends.
        if let Some(rewritten) = integral_as_integer(&query, &path) {
            query = std::borrow::Cow::Owned(rewritten);
            continue;
        }
        let field = (path != "." && !path.is_empty()).then(|| path.clone());
        return Err(ApiError::bad_request(
            field,
            format!("invalid query parameter {path}: {}", err.inner()),
        ));
    }
}

/// `query` with every value of parameter `name` that is an integral decimal (`5.0`, `-3.00`)
/// written as the integer; `None` when it has no such value.
fn integral_as_integer(query: &str, name: &str) -> Option<String> {
    let integral = |value: &str| -> Option<String> {
        let (whole, fraction) = value.split_once('.')?;
        let digits = whole.strip_prefix('-').unwrap_or(whole);
        let is_integral = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !fraction.is_empty()
            && fraction.bytes().all(|b| b == b'0');
        is_integral.then(|| whole.to_owned())
    };
    let mut changed = false;
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match (key == name).then(|| integral(&value)).flatten() {
            Some(integer) => {
                changed = true;
                out.append_pair(&key, &integer);
            }
            None => {
                out.append_pair(&key, &value);
            }
        }
    }
    changed.then(|| out.finish())
}

/// The 422 of a NUL character in `field`.
fn nul_problem(field: String) -> ApiError {
    ApiError::validation(field, "must not contain the NUL character (\\u0000)")
}

/// The path of the first string (or key) of a JSON value that holds a NUL character, if one
/// does: `title`, `parameters.projectId`, `tags[2]`.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    let joined = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => {
            Some(if at.is_empty() { "body".to_owned() } else { at })
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(key, inner)| {
            if key.contains('\0') {
                Some(joined(&key.replace('\0', "\\0")))
            } else {
                nul_path(inner, joined(key))
            }
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, inner)| nul_path(inner, format!("{at}[{i}]"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        first_name: String,
        priority: u8,
    }

    fn field(err: ApiError) -> Option<String> {
        match err {
            ApiError::Validation { field, .. } => Some(field),
            ApiError::BadRequest { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        let err = decode_json::<Body>(br#"{"firstName": 1, "priority": 1}"#).unwrap_err();
        assert_eq!(field(err).as_deref(), Some("firstName"));
        let err = decode_json::<Body>(br#"{"firstName": "a", "priority": 1, "x": 2}"#).unwrap_err();
        assert_eq!(field(err).as_deref(), Some("x"));
        let err = decode_json::<Body>(br#"{"firstName": "a"}"#).unwrap_err();
        assert_eq!(field(err).as_deref(), Some("priority"));
    }

    /// serde reads a struct from an array of its fields; the API's bodies are objects only.
    #[test]
    fn bodies_that_are_not_objects_are_422() {
        for body in [&b"[]"[..], br#"["a", 1]"#, b"1", br#""a""#, b"null"] {
            let err = decode_json::<Body>(body).unwrap_err();
            assert!(matches!(err, ApiError::Validation { .. }), "{err:?}");
            assert_eq!(field(err).as_deref(), Some("body"));
        }
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        let err = decode_json::<Body>(br#"{"firstName": "#).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { .. }), "{err:?}");
        let err = decode_json::<Body>(br#"{"firstName": "a", "priority": 1} x"#).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { .. }), "{err:?}");
    }

    #[test]
    fn nul_characters_are_422_naming_the_field() {
        let err = decode_json::<Body>(br#"{"firstName": "a\u0000b", "priority": 1}"#).unwrap_err();
        assert!(matches!(err, ApiError::Validation { .. }), "{err:?}");
        assert_eq!(field(err).as_deref(), Some("firstName"));
        let nested: serde_json::Value =
            serde_json::from_str(r#"{"parameters": {"tags": ["ok", "x\u0000"]}}"#).unwrap();
        assert_eq!(
            nul_path(&nested, String::new()).as_deref(),
            Some("parameters.tags[1]")
        );
        let escaped: serde_json::Value = serde_json::from_str(r#"{"a": "\\u0000 is text"}"#).unwrap();
        assert_eq!(nul_path(&escaped, String::new()), None);
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Q {
            q: Option<String>,
        }
        let err = decode_query::<Q>("q=%00").unwrap_err();
        assert!(matches!(err, ApiError::Validation { .. }), "{err:?}");
        assert_eq!(field(err).as_deref(), Some("q"));
    }

    #[test]
    fn integral_floats_are_integers() {
        let body = decode_json::<Body>(br#"{"firstName": "a", "priority": 3.0}"#).unwrap();
        assert_eq!(body.priority, 3);
        let err = decode_json::<Body>(br#"{"firstName": "a", "priority": 3.5}"#).unwrap_err();
        assert!(matches!(err, ApiError::Validation { .. }), "{err:?}");
    }

    #[test]
    fn query_errors_name_the_parameter() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<u32>,
        }
        let err = decode_query::<Q>("limit=abc").unwrap_err();
        assert_eq!(field(err).as_deref(), Some("limit"));
        assert!(decode_query::<Q>("limit=5&other=x").is_ok());
    }

    #[test]
    fn integral_decimals_in_a_query_are_integers() {
        #[derive(Debug, Deserialize)]
        struct Q {
            limit: Option<u32>,
            offset: Option<i64>,
            q: Option<String>,
        }
        let q = decode_query::<Q>("limit=5.0&offset=-3.00&q=1.0").unwrap();
        assert_eq!(
            (q.limit, q.offset, q.q.as_deref()),
            (Some(5), Some(-3), Some("1.0"))
        );
        for bad in [
            "limit=5.5",
            "limit=5.",
            "limit=.0",
            "limit=-.0",
            "limit=1e2",
            "limit=5.0.0",
        ] {
            let err = decode_query::<Q>(bad).unwrap_err();
            assert_eq!(field(err).as_deref(), Some("limit"), "{bad}");
        }
        let err = decode_query::<Q>("limit=-1.0").unwrap_err();
        assert_eq!(
            field(err).as_deref(),
            Some("limit"),
            "negative for an unsigned parameter"
        );
    }
}
