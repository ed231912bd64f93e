//! The two macros that define every wire value type in this crate.
//!
//! Wire values are *open*: a peer may send a value this crate has never heard of, and it must
//! survive parsing, comparison and re-encoding unchanged. So each type is a transparent newtype
//! over the raw integer with associated constants, never a Rust `enum`.

/// An open enumeration: a newtype with named constants, `name()`, a table of all known values,
/// and `Debug`/`Display` that print the name (with an optional prefix) or the value in hex.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($ty:ty);
        prefix = $prefix:literal;
        $(
            $(#[$cmeta:meta])*
            $cname:ident = $cval:literal
        ),* $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        $vis struct $name(pub $ty);

        #[allow(missing_docs)]
        impl $name {
            $(
                $(#[$cmeta])*
                pub const $cname: $name = $name($cval);
            )*

            /// Every named value with its name, in declaration order.
            pub const KNOWN: &'static [($name, &'static str)] = &[
                $( ($name($cval), stringify!($cname)), )*
            ];

            /// The constant's name (without prefix), or `None` for a value this crate doesn't name.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $cval => Some(stringify!($cname)), )*
                    _ => None,
                }
            }

            /// True when the value is one of the named constants.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}{}", $prefix, n),
                    None => write!(f, "0x{:0w$X}", self.0, w = 2 * ::core::mem::size_of::<$ty>()),
                }
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(self, f)
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                v.0
            }
        }
    };
}

/// A set of bit flags: a newtype with named constants, set operations, and a `Display` that
/// lists the set names joined by `|` plus any unnamed bits in hex.
macro_rules! wire_flags {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($ty:ty);
        $(
            $(#[$cmeta:meta])*
            $cname:ident = $cval:literal
        ),* $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        $vis struct $name(pub $ty);

        #[allow(missing_docs)]
        impl $name {
            $(
                $(#[$cmeta])*
                pub const $cname: $name = $name($cval);
            )*

            /// Every named flag with its name, in declaration order.
            pub const KNOWN: &'static [($name, &'static str)] = &[
                $( ($name($cval), stringify!($cname)), )*
            ];

            /// No bits set.
            pub const fn empty() -> Self {
                $name(0)
            }

            /// The raw bits.
            pub const fn bits(self) -> $ty {
                self.0
            }

            /// True when no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// True when every bit of `other` is set in `self` (and `other` is not empty).
            pub const fn contains(self, other: Self) -> bool {
                other.0 != 0 && self.0 & other.0 == other.0
            }

            /// True when any bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// `self` with the bits of `other` added.
            #[must_use]
            pub const fn with(self, other: Self) -> Self {
                $name(self.0 | other.0)
            }

            /// `self` with the bits of `other` removed.
            #[must_use]
            pub const fn without(self, other: Self) -> Self {
                $name(self.0 & !other.0)
            }

            /// Adds the bits of `other`.
            pub fn insert(&mut self, other: Self) {
                self.0 |= other.0;
            }

            /// Removes the bits of `other`.
            pub fn remove(&mut self, other: Self) {
                self.0 &= !other.0;
            }

            /// Sets or clears the bits of `other`.
            pub fn set(&mut self, other: Self, on: bool) {
                if on {
                    self.insert(other)
                } else {
                    self.remove(other)
                }
            }

            /// The union of every named flag.
            pub const fn all_known() -> Self {
                $name(0 $( | $cval )*)
            }
        }

        impl ::core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                $name(self.0 | rhs.0)
            }
        }

        impl ::core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl ::core::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                $name(self.0 & rhs.0)
            }
        }

        impl ::core::ops::BitAndAssign for $name {
            fn bitand_assign(&mut self, rhs: Self) {
                self.0 &= rhs.0;
            }
        }

        impl ::core::ops::BitXor for $name {
            type Output = Self;
            fn bitxor(self, rhs: Self) -> Self {
                $name(self.0 ^ rhs.0)
            }
        }

        impl ::core::ops::Not for $name {
            type Output = Self;
            fn not(self) -> Self {
                $name(!self.0)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                let mut rest = self.0;
                let mut first = true;
                for (flag, fname) in Self::KNOWN {
                    // Multi-bit masks and zero-valued names would double-print; only
                    // single-bit names take part in the decomposition.
                    if flag.0.count_ones() == 1 && self.0 & flag.0 == flag.0 {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(fname)?;
                        first = false;
                        rest &= !flag.0;
                    }
                }
                if rest != 0 || first {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "0x{:0w$X}", rest, w = 2 * ::core::mem::size_of::<$ty>())?;
                }
                Ok(())
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                v.0
            }
        }
    };
}
