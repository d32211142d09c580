//! The built-in functions available in expressions.
//!
//! hcl-rs calls plain `fn` pointers, so each function is a free function over its
//! already type-checked arguments.

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Number, Value};

/// Names of all built-in functions (also used for did-you-mean).
pub(crate) const FUNCTION_NAMES: &[&str] = &[
    "lower",
    "upper",
    "format",
    "join",
    "split",
    "replace",
    "trimspace",
    "substr",
    "length",
    "concat",
    "merge",
    "keys",
    "values",
    "lookup",
    "contains",
    "coalesce",
    "min",
    "max",
    "tostring",
    "tonumber",
    "toset",
    "tolist",
    "range",
];

/// Declares every built-in function in `ctx`.
pub(crate) fn declare(ctx: &mut Context<'static>) {
    use ParamType::{Any, Number as Num, String as Str};
    let arr = || ParamType::array_of(Any);
    let obj = || ParamType::object_of(Any);
    let f = |params: Vec<ParamType>, variadic: Option<ParamType>, func: hcl::eval::Func| {
        let mut b = FuncDef::builder().params(params);
        if let Some(v) = variadic {
            b = b.variadic_param(v);
        }
        b.build(func)
    };
    ctx.declare_func("lower", f(vec![Str], None, lower));
    ctx.declare_func("upper", f(vec![Str], None, upper));
    ctx.declare_func("trimspace", f(vec![Str], None, trimspace));
    ctx.declare_func("format", f(vec![Str], Some(Any), format));
    ctx.declare_func("join", f(vec![Str, arr()], None, join));
    ctx.declare_func("split", f(vec![Str, Str], None, split));
    ctx.declare_func("replace", f(vec![Str, Str, Str], None, replace));
    ctx.declare_func("substr", f(vec![Str, Num, Num], None, substr));
    ctx.declare_func("length", f(vec![Any], None, length));
    ctx.declare_func("concat", f(vec![], Some(arr()), concat));
    ctx.declare_func("merge", f(vec![], Some(obj()), merge));
    ctx.declare_func("keys", f(vec![obj()], None, keys));
    ctx.declare_func("values", f(vec![obj()], None, values));
    ctx.declare_func("lookup", f(vec![obj(), Str], Some(Any), lookup));
    ctx.declare_func("contains", f(vec![arr(), Any], None, contains));
    ctx.declare_func("coalesce", f(vec![], Some(Any), coalesce));
    ctx.declare_func("min", f(vec![Num], Some(Num), min));
    ctx.declare_func("max", f(vec![Num], Some(Num), max));
    ctx.declare_func("tostring", f(vec![Any], None, tostring));
    ctx.declare_func("tonumber", f(vec![Any], None, tonumber));
    ctx.declare_func("toset", f(vec![arr()], None, toset));
    ctx.declare_func("tolist", f(vec![Any], None, tolist));
    ctx.declare_func("range", f(vec![Num], Some(Num), range));
}

fn str_arg(args: &FuncArgs, i: usize) -> &str {
    args[i].as_str().unwrap_or_default()
}

fn num_arg(args: &FuncArgs, i: usize) -> f64 {
    args[i].as_f64().unwrap_or_default()
}

/// A number as HCL writes it: integral values stay integers.
pub(crate) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// The text form used by templates, `tostring`, `join` and `format("%s")`.
pub(crate) fn to_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("cannot convert null to a string".into()),
        Value::Array(_) => Err("cannot convert a list to a string".into()),
        Value::Object(_) => Err("cannot convert an object to a string".into()),
    }
}

fn lower(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(str_arg(&args, 0).to_lowercase()))
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(str_arg(&args, 0).to_uppercase()))
}

fn trimspace(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(str_arg(&args, 0).trim()))
}

fn format(args: FuncArgs) -> Result<Value, String> {
    let fmt = str_arg(&args, 0);
    let mut rest = args.iter().skip(1);
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("format string ends with a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = rest
            .next()
            .ok_or_else(|| format!("not enough arguments for %{verb}"))?;
        match verb {
            's' => out.push_str(&to_text(arg)?),
            'd' => match arg.as_f64() {
                Some(f) if f.fract() == 0.0 => out.push_str(&(f as i64).to_string()),
                _ => return Err(format!("%d needs an integer, got `{arg}`")),
            },
            'v' => match arg {
                Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            },
            'q' => out.push_str(&format!("{:?}", to_text(arg)?)),
            other => {
                return Err(format!(
                    "unsupported format verb %{other} (use %s, %d, %v, %q or %%)"
                ))
            }
        }
    }
    if rest.next().is_some() {
        return Err("too many arguments for the format string".into());
    }
    Ok(Value::from(out))
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let sep = str_arg(&args, 0);
    let items = args[1].as_array().map(Vec::as_slice).unwrap_or_default();
    let parts: Result<Vec<String>, String> = items.iter().map(to_text).collect();
    Ok(Value::from(parts?.join(sep)))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let (sep, s) = (str_arg(&args, 0), str_arg(&args, 1));
    if s.is_empty() {
        return Ok(Value::Array(vec![]));
    }
    Ok(Value::Array(s.split(sep).map(Value::from).collect()))
}

fn replace(args: FuncArgs) -> Result<Value, String> {
    let (s, from, to) = (str_arg(&args, 0), str_arg(&args, 1), str_arg(&args, 2));
    if from.is_empty() {
        return Err("the substring to replace must not be empty".into());
    }
    Ok(Value::from(s.replace(from, to)))
}

fn substr(args: FuncArgs) -> Result<Value, String> {
    let chars: Vec<char> = str_arg(&args, 0).chars().collect();
    let len = chars.len() as i64;
    let mut offset = num_arg(&args, 1) as i64;
    if offset < 0 {
        offset += len;
    }
    let offset = offset.clamp(0, len) as usize;
    let length = num_arg(&args, 2) as i64;
    let end = if length < 0 {
        chars.len()
    } else {
        (offset + length as usize).min(chars.len())
    };
    Ok(Value::from(chars[offset..end].iter().collect::<String>()))
}

fn length(args: FuncArgs) -> Result<Value, String> {
    let n = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        other => return Err(format!("cannot take the length of `{other}`")),
    };
    Ok(Value::from(n as u64))
}

fn concat(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for a in args.iter() {
        out.extend(a.as_array().cloned().unwrap_or_default());
    }
    Ok(Value::Array(out))
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = Map::new();
    for a in args.iter() {
        for (k, v) in a.as_object().cloned().unwrap_or_default() {
            out.insert(k, v);
        }
    }
    Ok(Value::Object(out))
}

fn sorted_entries(v: &Value) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = v
        .as_object()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(
        sorted_entries(&args[0])
            .into_iter()
            .map(|(k, _)| Value::from(k.as_str()))
            .collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(
        sorted_entries(&args[0])
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    let key = str_arg(&args, 1);
    if args.len() > 3 {
        return Err("lookup takes a map, a key and an optional default".into());
    }
    match args[0].as_object().and_then(|o| o.get(key)) {
        Some(v) => Ok(v.clone()),
        None => args
            .get(2)
            .cloned()
            .ok_or_else(|| format!("no key \"{key}\" in the map and no default given")),
    }
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().map(Vec::as_slice).unwrap_or_default();
    Ok(Value::Bool(list.contains(&args[1])))
}

fn coalesce(args: FuncArgs) -> Result<Value, String> {
    args.iter()
        .find(|v| !v.is_null() && v.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| "all arguments are null or empty".into())
}

fn min(args: FuncArgs) -> Result<Value, String> {
    Ok(number(
        args.iter()
            .filter_map(Value::as_f64)
            .fold(f64::INFINITY, f64::min),
    ))
}

fn max(args: FuncArgs) -> Result<Value, String> {
    Ok(number(
        args.iter()
            .filter_map(Value::as_f64)
            .fold(f64::NEG_INFINITY, f64::max),
    ))
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        v => to_text(v).map(Value::from),
    }
}

fn tonumber(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => Ok(Value::Number(*n)),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(number)
            .map_err(|_| format!("cannot convert \"{s}\" to a number")),
        other => Err(format!("cannot convert `{other}` to a number")),
    }
}

fn toset(args: FuncArgs) -> Result<Value, String> {
    let items = match args.into_values().into_iter().next() {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    // Hashed: a scan of the elements kept so far made large sets quadratic. The first
    // of equal elements is kept, moved rather than copied.
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        items
            .iter()
            .map(|v| seen.insert(crate::hashed::Hashed(v)))
            .collect()
    };
    let mut out: Vec<Value> = items
        .into_iter()
        .zip(keep)
        .filter_map(|(v, keep)| keep.then_some(v))
        .collect();
    // Sets of strings are ordered like Terraform's: lexically.
    if out.iter().all(Value::is_string) {
        out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    Ok(Value::Array(out))
}

fn tolist(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Array(a) => Ok(Value::Array(a.clone())),
        other => Err(format!("cannot convert `{other}` to a list")),
    }
}

/// `range(end)`, `range(start, end)`, `range(start, end, step)`: the numbers from
/// `start` (0) towards `end` (excluded) by `step` (1, or -1 when `end < start`), at
/// most [`RANGE_LIMIT`] of them: `[for i in range(10000) : "t${i}"]` names ten
/// thousand instances.
fn range(args: FuncArgs) -> Result<Value, String> {
    let nums: Vec<f64> = args.iter().filter_map(Value::as_f64).collect();
    let (start, end, step) = match nums.as_slice() {
        [end] => (0.0, *end, 1.0),
        [start, end] => (*start, *end, if start <= end { 1.0 } else { -1.0 }),
        [start, end, step] => (*start, *end, *step),
        _ => return Err("range takes one to three numbers".into()),
    };
    if step == 0.0 || (step > 0.0 && start > end) || (step < 0.0 && start < end) {
        return Err("range step must move from start towards end".into());
    }
    // Checked before making any element, so that a mistyped bound fails at once.
    let count = ((end - start) / step).ceil();
    if count > RANGE_LIMIT as f64 {
        return Err(range_too_long(count));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut x = start;
    while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
        out.push(number(x));
        x += step;
        // Rounding of a fractional step can add one element to the count.
        if out.len() > RANGE_LIMIT {
            return Err(range_too_long(out.len() as f64));
        }
    }
    Ok(Value::Array(out))
}

/// The most elements `range` makes: a million instances is far beyond any farm terrace
/// manages, and a list that long still evaluates in well under a second; a mistyped
/// bound (`range(1e9)`) fails at once instead of exhausting memory.
pub(crate) const RANGE_LIMIT: usize = 1_000_000;

fn range_too_long(count: f64) -> String {
    format!(
        "range would make {count} elements; it makes at most {RANGE_LIMIT} (a million): check the bounds and the step"
    )
}
