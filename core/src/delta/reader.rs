//! Little-endian reading of message bytes with one error for running out.

use super::error::DeltaError;
use super::varint;

/// A cursor over a message's bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DeltaError> {
        if self.bytes.len() < n {
            return Err(DeltaError::Truncated { what });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DeltaError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, DeltaError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DeltaError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DeltaError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, DeltaError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u128(&mut self, what: &'static str) -> Result<u128, DeltaError> {
        Ok(u128::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, DeltaError> {
        varint::take(&mut self.bytes).ok_or(DeltaError::Truncated { what })
    }

    /// Checks the magic and the version (1) at the start of a message.
    pub(crate) fn header(&mut self, magic: &[u8; 4], name: &'static str) -> Result<(), DeltaError> {
        if self.bytes.len() >= 4 && self.bytes[..4] != magic[..] {
            return Err(DeltaError::BadMagic { expected: name });
        }
        self.take(4, name)?;
        match self.u8(name)? {
            1 => Ok(()),
            version => Err(DeltaError::UnsupportedVersion { version }),
        }
    }

    /// Fails unless every byte was read.
    pub(crate) fn end(&self) -> Result<(), DeltaError> {
        match self.bytes.len() {
            0 => Ok(()),
            extra => Err(DeltaError::TrailingBytes { extra: extra as u64 }),
        }
    }
}
