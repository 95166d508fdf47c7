//! Enums that can grow: a fixed set of snake_case names plus `Unknown(String)`, which keeps
//! a value a newer peer sends instead of mapping it to a neighbour or failing the message.

/// Declares an open enum: each variant with its wire name, plus `Unknown(String)`.
///
/// Serialized as the wire name (a string). A name this version does not know deserializes
/// to `Unknown(name)` and serializes back unchanged.
#[macro_export]
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the contract does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every wire name this version knows, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($wire),*];

            /// The snake_case wire name (`Unknown` keeps the peer's own word).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Unknown(s) => s.as_str(),
                }
            }

            /// Parses a wire name; anything else becomes `Unknown`.
            pub fn parse(name: &str) -> Self {
                match name {
                    $($wire => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }

            /// Whether this is a value this version knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    open_enum! {
        /// A test enum.
        pub enum Colour {
            /// Red.
            Red => "red",
            /// Dark blue.
            DarkBlue => "dark_blue",
        }
    }

    #[test]
    fn known_names_round_trip_and_unknown_ones_are_kept() {
        let c: Colour = serde_json::from_str("\"dark_blue\"").unwrap();
        assert_eq!(c, Colour::DarkBlue);
        let u: Colour = serde_json::from_str("\"ultraviolet\"").unwrap();
        assert_eq!(u, Colour::Unknown("ultraviolet".into()));
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"ultraviolet\"");
        assert!(!u.is_known() && Colour::Red.is_known());
        assert_eq!(Colour::KNOWN, ["red", "dark_blue"]);
    }
}
