//! File system information classes ([MS-FSCC] 2.5) used by QUERY_INFO with
//! SMB2_0_INFO_FILESYSTEM.

use crate::codec::{Reader, Writer, to_u32};
use crate::error::Result;
use crate::utf16;

wire_flags! {
    /// FileSystemAttributes of FileFsAttributeInformation ([MS-FSCC] 2.5.1).
    pub struct FsAttributes(u32);
    CASE_SENSITIVE_SEARCH = 0x0000_0001,
    CASE_PRESERVED_NAMES = 0x0000_0002,
    UNICODE_ON_DISK = 0x0000_0004,
    PERSISTENT_ACLS = 0x0000_0008,
    FILE_COMPRESSION = 0x0000_0010,
    VOLUME_QUOTAS = 0x0000_0020,
    SUPPORTS_SPARSE_FILES = 0x0000_0040,
    SUPPORTS_REPARSE_POINTS = 0x0000_0080,
    SUPPORTS_REMOTE_STORAGE = 0x0000_0100,
    VOLUME_IS_COMPRESSED = 0x0000_8000,
    SUPPORTS_OBJECT_IDS = 0x0001_0000,
    SUPPORTS_ENCRYPTION = 0x0002_0000,
    NAMED_STREAMS = 0x0004_0000,
    READ_ONLY_VOLUME = 0x0008_0000,
    SEQUENTIAL_WRITE_ONCE = 0x0010_0000,
    SUPPORTS_TRANSACTIONS = 0x0020_0000,
    SUPPORTS_HARD_LINKS = 0x0040_0000,
    SUPPORTS_EXTENDED_ATTRIBUTES = 0x0080_0000,
    SUPPORTS_OPEN_BY_FILE_ID = 0x0100_0000,
    SUPPORTS_USN_JOURNAL = 0x0200_0000,
    SUPPORTS_INTEGRITY_STREAMS = 0x0400_0000,
    SUPPORTS_BLOCK_REFCOUNTING = 0x0800_0000,
    SUPPORTS_SPARSE_VDL = 0x1000_0000,
}

/// FileFsVolumeInformation ([MS-FSCC] 2.5.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsVolumeInformation {
    /// VolumeCreationTime.
    pub volume_creation_time: u64,
    /// VolumeSerialNumber.
    pub volume_serial_number: u32,
    /// SupportsObjects.
    pub supports_objects: bool,
    /// VolumeLabel.
    pub volume_label: String,
}

impl FileFsVolumeInformation {
    /// Size before the label.
    pub const FIXED_SIZE: usize = 18;

    /// Appends the structure.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = Writer::new(out);
        w.u64(self.volume_creation_time);
        w.u32(self.volume_serial_number);
        w.u32(to_u32(
            utf16::encoded_len(&self.volume_label),
            "VolumeLabelLength",
        )?);
        w.u8(u8::from(self.supports_objects));
        w.u8(0);
        utf16::encode_into(&self.volume_label, out);
        Ok(())
    }

    /// Decodes the structure.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "FileFsVolumeInformation");
        let volume_creation_time = r.u64()?;
        let volume_serial_number = r.u32()?;
        let len = r.u32()? as usize;
        let supports_objects = r.u8()? != 0;
        r.u8()?;
        let volume_label = utf16::decode(r.bytes(len)?)?;
        Ok(FileFsVolumeInformation {
            volume_creation_time,
            volume_serial_number,
            supports_objects,
            volume_label,
        })
    }
}

/// FileFsSizeInformation ([MS-FSCC] 2.5.8), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSizeInformation {
    /// TotalAllocationUnits.
    pub total_allocation_units: u64,
    /// AvailableAllocationUnits.
    pub available_allocation_units: u64,
    /// SectorsPerAllocationUnit.
    pub sectors_per_allocation_unit: u32,
    /// BytesPerSector.
    pub bytes_per_sector: u32,
}

impl FileFsSizeInformation {
    /// Wire size.
    pub const SIZE: usize = 24;

    /// Appends the 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.total_allocation_units);
        w.u64(self.available_allocation_units);
        w.u32(self.sectors_per_allocation_unit);
        w.u32(self.bytes_per_sector);
    }

    /// Decodes the 24 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "FileFsSizeInformation");
        Ok(FileFsSizeInformation {
            total_allocation_units: r.u64()?,
            available_allocation_units: r.u64()?,
            sectors_per_allocation_unit: r.u32()?,
            bytes_per_sector: r.u32()?,
        })
    }
}

/// FileFsFullSizeInformation ([MS-FSCC] 2.5.4), 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsFullSizeInformation {
    /// TotalAllocationUnits.
    pub total_allocation_units: u64,
    /// CallerAvailableAllocationUnits (after quotas).
    pub caller_available_allocation_units: u64,
    /// ActualAvailableAllocationUnits.
    pub actual_available_allocation_units: u64,
    /// SectorsPerAllocationUnit.
    pub sectors_per_allocation_unit: u32,
    /// BytesPerSector.
    pub bytes_per_sector: u32,
}

impl FileFsFullSizeInformation {
    /// Wire size.
    pub const SIZE: usize = 32;

    /// Appends the 32 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.total_allocation_units);
        w.u64(self.caller_available_allocation_units);
        w.u64(self.actual_available_allocation_units);
        w.u32(self.sectors_per_allocation_unit);
        w.u32(self.bytes_per_sector);
    }

    /// Decodes the 32 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "FileFsFullSizeInformation");
        Ok(FileFsFullSizeInformation {
            total_allocation_units: r.u64()?,
            caller_available_allocation_units: r.u64()?,
            actual_available_allocation_units: r.u64()?,
            sectors_per_allocation_unit: r.u32()?,
            bytes_per_sector: r.u32()?,
        })
    }
}

/// FileFsDeviceInformation ([MS-FSCC] 2.5.10), 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsDeviceInformation {
    /// DeviceType (FILE_DEVICE_DISK 0x07 for shares).
    pub device_type: u32,
    /// Characteristics (FILE_REMOTE_DEVICE 0x10, FILE_DEVICE_IS_MOUNTED 0x20, ...).
    pub characteristics: u32,
}

impl FileFsDeviceInformation {
    /// Wire size.
    pub const SIZE: usize = 8;
    /// FILE_DEVICE_DISK.
    pub const FILE_DEVICE_DISK: u32 = 0x0000_0007;
    /// FILE_DEVICE_NAMED_PIPE.
    pub const FILE_DEVICE_NAMED_PIPE: u32 = 0x0000_0011;
    /// FILE_REMOTE_DEVICE characteristic.
    pub const FILE_REMOTE_DEVICE: u32 = 0x0000_0010;
    /// FILE_DEVICE_IS_MOUNTED characteristic.
    pub const FILE_DEVICE_IS_MOUNTED: u32 = 0x0000_0020;

    /// Appends the 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.device_type);
        w.u32(self.characteristics);
    }
}

/// FileFsAttributeInformation ([MS-FSCC] 2.5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileFsAttributeInformation {
    /// FileSystemAttributes.
    pub attributes: FsAttributes,
    /// MaximumComponentNameLength (255 typically).
    pub maximum_component_name_length: u32,
    /// FileSystemName ("NTFS" is what clients expect for full feature use).
    pub file_system_name: String,
}

impl FileFsAttributeInformation {
    /// Size before the name.
    pub const FIXED_SIZE: usize = 12;

    /// Appends the structure.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = Writer::new(out);
        w.u32(self.attributes.0);
        w.u32(self.maximum_component_name_length);
        w.u32(to_u32(
            utf16::encoded_len(&self.file_system_name),
            "FileSystemNameLength",
        )?);
        utf16::encode_into(&self.file_system_name, out);
        Ok(())
    }

    /// Decodes the structure.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "FileFsAttributeInformation");
        let attributes = FsAttributes(r.u32()?);
        let maximum_component_name_length = r.u32()?;
        let len = r.u32()? as usize;
        let file_system_name = utf16::decode(r.bytes(len)?)?;
        Ok(FileFsAttributeInformation {
            attributes,
            maximum_component_name_length,
            file_system_name,
        })
    }
}

/// FileFsSectorSizeInformation ([MS-FSCC] 2.5.7), 28 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileFsSectorSizeInformation {
    /// LogicalBytesPerSector.
    pub logical_bytes_per_sector: u32,
    /// PhysicalBytesPerSectorForAtomicity.
    pub physical_bytes_per_sector_for_atomicity: u32,
    /// PhysicalBytesPerSectorForPerformance.
    pub physical_bytes_per_sector_for_performance: u32,
    /// FileSystemEffectivePhysicalBytesPerSectorForAtomicity.
    pub effective_physical_bytes_per_sector_for_atomicity: u32,
    /// Flags (SSINFO_FLAGS_ALIGNED_DEVICE 1, SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE 2, ...).
    pub flags: u32,
    /// ByteOffsetForSectorAlignment.
    pub byte_offset_for_sector_alignment: u32,
    /// ByteOffsetForPartitionAlignment.
    pub byte_offset_for_partition_alignment: u32,
}

impl FileFsSectorSizeInformation {
    /// Wire size.
    pub const SIZE: usize = 28;

    /// The usual values for a 4 KiB-sector-agnostic share (512-byte logical sectors).
    pub fn uniform(sector: u32) -> Self {
        FileFsSectorSizeInformation {
            logical_bytes_per_sector: sector,
            physical_bytes_per_sector_for_atomicity: sector,
            physical_bytes_per_sector_for_performance: sector,
            effective_physical_bytes_per_sector_for_atomicity: sector,
            flags: 0x3,
            byte_offset_for_sector_alignment: 0,
            byte_offset_for_partition_alignment: 0,
        }
    }

    /// Appends the 28 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.logical_bytes_per_sector);
        w.u32(self.physical_bytes_per_sector_for_atomicity);
        w.u32(self.physical_bytes_per_sector_for_performance);
        w.u32(self.effective_physical_bytes_per_sector_for_atomicity);
        w.u32(self.flags);
        w.u32(self.byte_offset_for_sector_alignment);
        w.u32(self.byte_offset_for_partition_alignment);
    }
}

/// FileFsObjectIdInformation ([MS-FSCC] 2.5.6), 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFsObjectIdInformation {
    /// ObjectId of the volume.
    pub object_id: [u8; 16],
    /// ExtendedInfo.
    pub extended_info: [u8; 48],
}

impl FileFsObjectIdInformation {
    /// Wire size.
    pub const SIZE: usize = 64;

    /// Appends the 64 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.bytes(&self.object_id);
        w.bytes(&self.extended_info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_round_trips() {
        let v = FileFsVolumeInformation {
            volume_creation_time: 5,
            volume_serial_number: 0xABCD,
            supports_objects: false,
            volume_label: "share".into(),
        };
        let mut b = Vec::new();
        v.encode(&mut b).unwrap();
        assert_eq!(b.len(), 18 + 10);
        assert_eq!(&b[12..16], &[10, 0, 0, 0]);
        assert_eq!(FileFsVolumeInformation::parse(&b).unwrap(), v);

        let a = FileFsAttributeInformation {
            attributes: FsAttributes::CASE_PRESERVED_NAMES | FsAttributes::UNICODE_ON_DISK,
            maximum_component_name_length: 255,
            file_system_name: "NTFS".into(),
        };
        let mut b = Vec::new();
        a.encode(&mut b).unwrap();
        assert_eq!(
            b,
            [
                6, 0, 0, 0, 255, 0, 0, 0, 8, 0, 0, 0, b'N', 0, b'T', 0, b'F', 0, b'S', 0
            ]
        );
        assert_eq!(FileFsAttributeInformation::parse(&b).unwrap(), a);

        let f = FileFsFullSizeInformation {
            total_allocation_units: 100,
            caller_available_allocation_units: 50,
            actual_available_allocation_units: 50,
            sectors_per_allocation_unit: 8,
            bytes_per_sector: 512,
        };
        let mut b = Vec::new();
        f.encode(&mut b);
        assert_eq!(b.len(), FileFsFullSizeInformation::SIZE);
        assert_eq!(FileFsFullSizeInformation::parse(&b).unwrap(), f);
        let s = FileFsSizeInformation {
            total_allocation_units: 1,
            available_allocation_units: 2,
            sectors_per_allocation_unit: 3,
            bytes_per_sector: 4,
        };
        let mut b = Vec::new();
        s.encode(&mut b);
        assert_eq!(FileFsSizeInformation::parse(&b).unwrap(), s);
        let mut b = Vec::new();
        FileFsSectorSizeInformation::uniform(512).encode(&mut b);
        assert_eq!(b.len(), 28);
        let mut b = Vec::new();
        FileFsDeviceInformation {
            device_type: FileFsDeviceInformation::FILE_DEVICE_DISK,
            characteristics: 0x20,
        }
        .encode(&mut b);
        assert_eq!(b, [7, 0, 0, 0, 0x20, 0, 0, 0]);
    }
}
