//! Reading variables: empty means unset, and every error names the variable and what was
//! expected.

use super::ConfigError;

pub(super) fn invalid(var: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        var,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A variable's value; empty counts as unset so `VAR=` in a .env file means "default".
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    pub(super) fn url(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        if value.starts_with("https://") || value.starts_with("http://") {
            Ok(value.trim_end_matches('/').to_owned())
        } else {
            Err(invalid(var, &value, "an http:// or https:// URL"))
        }
    }

    pub(super) fn parse_bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(invalid(var, other, "`true` or `false`")),
        }
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: &str,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        value.trim().parse().map_err(|_| invalid(var, &value, expected))
    }

    pub(super) fn parse_in<T>(
        &self,
        var: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.get(var) else {
            return Ok(default);
        };
        let expected = || format!("a whole number from {} to {}", range.start(), range.end());
        let parsed: T = value
            .trim()
            .parse()
            .map_err(|_| invalid(var, &value, &expected()))?;
        if range.contains(&parsed) {
            Ok(parsed)
        } else {
            Err(invalid(var, &value, &expected()))
        }
    }

    /// [`Self::parse_in`] for a variable with no default.
    pub(super) fn parse_opt_in<T>(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        if self.get(var).is_none() {
            return Ok(None);
        }
        self.parse_in(var, *range.start(), range).map(Some)
    }
}
