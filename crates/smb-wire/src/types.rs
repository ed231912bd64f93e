//! Open wire-value newtypes and identifier newtypes shared by several messages.
//!
//! Each type cites the section that defines its values. Names are the spec's minus the
//! common prefix (`SMB2_`, `FILE_`, ...).

pub use crate::fsctl::CtlCode;
pub use crate::status::NtStatus;

wire_enum! {
    /// The SMB2 command code of a header ([MS-SMB2] 2.2.1.1 Command).
    pub struct Command(u16);
    prefix = "SMB2_";
    NEGOTIATE = 0x0000,
    SESSION_SETUP = 0x0001,
    LOGOFF = 0x0002,
    TREE_CONNECT = 0x0003,
    TREE_DISCONNECT = 0x0004,
    CREATE = 0x0005,
    CLOSE = 0x0006,
    FLUSH = 0x0007,
    READ = 0x0008,
    WRITE = 0x0009,
    LOCK = 0x000A,
    IOCTL = 0x000B,
    CANCEL = 0x000C,
    ECHO = 0x000D,
    QUERY_DIRECTORY = 0x000E,
    CHANGE_NOTIFY = 0x000F,
    QUERY_INFO = 0x0010,
    SET_INFO = 0x0011,
    OPLOCK_BREAK = 0x0012,
    /// SMB2 SERVER_TO_CLIENT_NOTIFICATION ([MS-SMB2] 2.2.44), 3.1.1 only.
    SERVER_TO_CLIENT_NOTIFICATION = 0x0013,
}

wire_enum! {
    /// An SMB2 dialect revision ([MS-SMB2] 2.2.3 Dialects).
    pub struct Dialect(u16);
    prefix = "";
    SMB2_0_2 = 0x0202,
    SMB2_1 = 0x0210,
    SMB3_0 = 0x0300,
    SMB3_0_2 = 0x0302,
    SMB3_1_1 = 0x0311,
    /// "SMB 2.???" in a NEGOTIATE response to a multi-protocol SMB1 negotiate ([MS-SMB2] 3.3.5.3.1).
    WILDCARD = 0x02FF,
}

impl Dialect {
    /// True for the 3.x family (signing with AES, encryption, multichannel possible).
    pub const fn is_smb3(self) -> bool {
        self.0 >= 0x0300 && self.0 != 0x02FF
    }
}

wire_flags! {
    /// Header flags ([MS-SMB2] 2.2.1.2 Flags).
    pub struct HeaderFlags(u32);
    SERVER_TO_REDIR = 0x0000_0001,
    ASYNC_COMMAND = 0x0000_0002,
    RELATED_OPERATIONS = 0x0000_0004,
    SIGNED = 0x0000_0008,
    /// The 3-bit message priority (3.1.1), a field rather than a flag.
    PRIORITY_MASK = 0x0000_0070,
    DFS_OPERATIONS = 0x1000_0000,
    REPLAY_OPERATION = 0x2000_0000,
}

wire_flags! {
    /// Global capabilities in NEGOTIATE and SESSION_SETUP ([MS-SMB2] 2.2.3, 2.2.4).
    pub struct Capabilities(u32);
    DFS = 0x0000_0001,
    LEASING = 0x0000_0002,
    LARGE_MTU = 0x0000_0004,
    MULTI_CHANNEL = 0x0000_0008,
    PERSISTENT_HANDLES = 0x0000_0010,
    DIRECTORY_LEASING = 0x0000_0020,
    ENCRYPTION = 0x0000_0040,
    NOTIFICATIONS = 0x0000_0080,
}

wire_flags! {
    /// Security mode ([MS-SMB2] 2.2.3 SecurityMode). SESSION_SETUP carries it in one byte.
    pub struct SecurityMode(u16);
    SIGNING_ENABLED = 0x0001,
    SIGNING_REQUIRED = 0x0002,
}

wire_enum! {
    /// Negotiate context types ([MS-SMB2] 2.2.3.1 ContextType).
    pub struct NegotiateContextType(u16);
    prefix = "SMB2_";
    PREAUTH_INTEGRITY_CAPABILITIES = 0x0001,
    ENCRYPTION_CAPABILITIES = 0x0002,
    COMPRESSION_CAPABILITIES = 0x0003,
    NETNAME_NEGOTIATE_CONTEXT_ID = 0x0005,
    TRANSPORT_CAPABILITIES = 0x0006,
    RDMA_TRANSFORM_CAPABILITIES = 0x0007,
    SIGNING_CAPABILITIES = 0x0008,
    /// Samba/Linux SMB3.1.1 POSIX extensions context (not in [MS-SMB2]).
    POSIX_EXTENSIONS = 0x0100,
}

wire_enum! {
    /// Preauth integrity hash algorithms ([MS-SMB2] 2.2.3.1.1).
    pub struct HashAlgorithm(u16);
    prefix = "";
    SHA_512 = 0x0001,
}

wire_enum! {
    /// Encryption ciphers ([MS-SMB2] 2.2.3.1.2).
    pub struct Cipher(u16);
    prefix = "";
    AES_128_CCM = 0x0001,
    AES_128_GCM = 0x0002,
    AES_256_CCM = 0x0003,
    AES_256_GCM = 0x0004,
}

wire_enum! {
    /// Compression algorithms ([MS-SMB2] 2.2.3.1.3).
    pub struct CompressionAlgorithm(u16);
    prefix = "";
    NONE = 0x0000,
    LZNT1 = 0x0001,
    LZ77 = 0x0002,
    LZ77_HUFFMAN = 0x0003,
    PATTERN_V1 = 0x0004,
    LZ4 = 0x0005,
}

wire_enum! {
    /// Signing algorithms ([MS-SMB2] 2.2.3.1.7).
    pub struct SigningAlgorithm(u16);
    prefix = "";
    HMAC_SHA256 = 0x0000,
    AES_CMAC = 0x0001,
    AES_GMAC = 0x0002,
}

wire_enum! {
    /// Share type in a TREE_CONNECT response ([MS-SMB2] 2.2.10 ShareType).
    pub struct ShareType(u8);
    prefix = "SMB2_SHARE_TYPE_";
    DISK = 0x01,
    PIPE = 0x02,
    PRINT = 0x03,
}

wire_flags! {
    /// Share flags in a TREE_CONNECT response ([MS-SMB2] 2.2.10 ShareFlags). The caching
    /// policy is a 2-bit field (`CACHING_MASK`): MANUAL 0, AUTO 0x10, VDO 0x20, NO 0x30.
    pub struct ShareFlags(u32);
    DFS = 0x0000_0001,
    DFS_ROOT = 0x0000_0002,
    AUTO_CACHING = 0x0000_0010,
    VDO_CACHING = 0x0000_0020,
    NO_CACHING = 0x0000_0030,
    RESTRICT_EXCLUSIVE_OPENS = 0x0000_0100,
    FORCE_SHARED_DELETE = 0x0000_0200,
    ALLOW_NAMESPACE_CACHING = 0x0000_0400,
    ACCESS_BASED_DIRECTORY_ENUM = 0x0000_0800,
    FORCE_LEVELII_OPLOCK = 0x0000_1000,
    ENABLE_HASH_V1 = 0x0000_2000,
    ENABLE_HASH_V2 = 0x0000_4000,
    ENCRYPT_DATA = 0x0000_8000,
    IDENTITY_REMOTING = 0x0004_0000,
    COMPRESS_DATA = 0x0010_0000,
    ISOLATED_TRANSPORT = 0x0020_0000,
}

impl ShareFlags {
    /// Manual caching: the value 0 of the caching field.
    pub const MANUAL_CACHING: ShareFlags = ShareFlags(0);
    /// The 2-bit caching policy field.
    pub const CACHING_MASK: ShareFlags = ShareFlags(0x30);
}

wire_flags! {
    /// Share capabilities in a TREE_CONNECT response ([MS-SMB2] 2.2.10 Capabilities).
    pub struct ShareCaps(u32);
    DFS = 0x0000_0008,
    CONTINUOUS_AVAILABILITY = 0x0000_0010,
    SCALEOUT = 0x0000_0020,
    CLUSTER = 0x0000_0040,
    ASYMMETRIC = 0x0000_0080,
    REDIRECT_TO_OWNER = 0x0000_0100,
}

wire_flags! {
    /// Session flags in a SESSION_SETUP response ([MS-SMB2] 2.2.6 SessionFlags).
    pub struct SessionFlags(u16);
    IS_GUEST = 0x0001,
    IS_NULL = 0x0002,
    ENCRYPT_DATA = 0x0004,
}

wire_flags! {
    /// Flags of a SESSION_SETUP request ([MS-SMB2] 2.2.5 Flags).
    pub struct SessionSetupFlags(u8);
    BINDING = 0x01,
}

wire_flags! {
    /// Flags of a TREE_CONNECT request, 3.1.1 ([MS-SMB2] 2.2.9 Flags).
    pub struct TreeConnectFlags(u16);
    CLUSTER_RECONNECT = 0x0001,
    REDIRECT_TO_OWNER = 0x0002,
    EXTENSION_PRESENT = 0x0004,
}

wire_flags! {
    /// Flags of an IOCTL request/response ([MS-SMB2] 2.2.31 Flags).
    pub struct IoctlFlags(u32);
    IS_FSCTL = 0x0000_0001,
}

wire_enum! {
    /// QUERY_INFO/SET_INFO InfoType ([MS-SMB2] 2.2.37).
    pub struct InfoType(u8);
    prefix = "SMB2_0_INFO_";
    FILE = 0x01,
    FILESYSTEM = 0x02,
    SECURITY = 0x03,
    QUOTA = 0x04,
}

wire_enum! {
    /// File information classes ([MS-FSCC] 2.4), named without `File`/`Information`.
    pub struct FileInfoClass(u8);
    prefix = "File";
    DIRECTORY = 1,
    FULL_DIRECTORY = 2,
    BOTH_DIRECTORY = 3,
    BASIC = 4,
    STANDARD = 5,
    INTERNAL = 6,
    EA = 7,
    ACCESS = 8,
    NAME = 9,
    RENAME = 10,
    LINK = 11,
    NAMES = 12,
    DISPOSITION = 13,
    POSITION = 14,
    FULL_EA = 15,
    MODE = 16,
    ALIGNMENT = 17,
    ALL = 18,
    ALLOCATION = 19,
    END_OF_FILE = 20,
    ALTERNATE_NAME = 21,
    STREAM = 22,
    PIPE = 23,
    PIPE_LOCAL = 24,
    PIPE_REMOTE = 25,
    MAILSLOT_QUERY = 26,
    MAILSLOT_SET = 27,
    COMPRESSION = 28,
    OBJECT_ID = 29,
    COMPLETION = 30,
    MOVE_CLUSTER = 31,
    QUOTA = 32,
    REPARSE_POINT = 33,
    NETWORK_OPEN = 34,
    ATTRIBUTE_TAG = 35,
    TRACKING = 36,
    ID_BOTH_DIRECTORY = 37,
    ID_FULL_DIRECTORY = 38,
    VALID_DATA_LENGTH = 39,
    SHORT_NAME = 40,
    IO_COMPLETION_NOTIFICATION = 41,
    IO_STATUS_BLOCK_RANGE = 42,
    IO_PRIORITY_HINT = 43,
    SFIO_RESERVE = 44,
    SFIO_VOLUME = 45,
    HARD_LINK = 46,
    PROCESS_IDS_USING_FILE = 47,
    NORMALIZED_NAME = 48,
    NETWORK_PHYSICAL_NAME = 49,
    ID_GLOBAL_TX_DIRECTORY = 50,
    IS_REMOTE_DEVICE = 51,
    UNUSED = 52,
    NUMA_NODE = 53,
    STANDARD_LINK = 54,
    REMOTE_PROTOCOL = 55,
    RENAME_BYPASS_ACCESS_CHECK = 56,
    LINK_BYPASS_ACCESS_CHECK = 57,
    VOLUME_NAME = 58,
    ID = 59,
    ID_EXTD_DIRECTORY = 60,
    REPLACE_COMPLETION = 61,
    HARD_LINK_FULL_ID = 62,
    ID_EXTD_BOTH_DIRECTORY = 63,
    DISPOSITION_EX = 64,
    RENAME_EX = 65,
    RENAME_EX_BYPASS_ACCESS_CHECK = 66,
    DESIRED_STORAGE_CLASS = 67,
    STAT = 68,
    MEMORY_PARTITION = 69,
    STAT_LX = 70,
    CASE_SENSITIVE = 71,
    LINK_EX = 72,
    LINK_EX_BYPASS_ACCESS_CHECK = 73,
    STORAGE_RESERVE_ID = 74,
    CASE_SENSITIVE_FORCE_ACCESS_CHECK = 75,
    KNOWN_FOLDER = 76,
    STAT_BASIC = 77,
    ID64_EXTD_DIRECTORY = 78,
    ID64_EXTD_BOTH_DIRECTORY = 79,
    ID_ALL_EXTD_DIRECTORY = 80,
    ID_ALL_EXTD_BOTH_DIRECTORY = 81,
    /// SMB3 POSIX extensions (Samba), not in [MS-FSCC].
    POSIX = 100,
}

wire_enum! {
    /// File system information classes ([MS-FSCC] 2.5), named without `FileFs`/`Information`.
    pub struct FsInfoClass(u8);
    prefix = "FileFs";
    VOLUME = 1,
    LABEL = 2,
    SIZE = 3,
    DEVICE = 4,
    ATTRIBUTE = 5,
    CONTROL = 6,
    FULL_SIZE = 7,
    OBJECT_ID = 8,
    DRIVER_PATH = 9,
    VOLUME_FLAGS = 10,
    SECTOR_SIZE = 11,
    DATA_COPY = 12,
    METADATA_SIZE = 13,
    FULL_SIZE_EX = 14,
    /// SMB3 POSIX extensions (Samba), not in [MS-FSCC].
    POSIX = 100,
}

wire_flags! {
    /// Access rights ([MS-SMB2] 2.2.13.1, [MS-DTYP] 2.4.3). Directory aliases
    /// (LIST_DIRECTORY, ADD_FILE, ...) are separate constants with the same bits.
    pub struct AccessMask(u32);
    FILE_READ_DATA = 0x0000_0001,
    FILE_WRITE_DATA = 0x0000_0002,
    FILE_APPEND_DATA = 0x0000_0004,
    FILE_READ_EA = 0x0000_0008,
    FILE_WRITE_EA = 0x0000_0010,
    FILE_EXECUTE = 0x0000_0020,
    FILE_DELETE_CHILD = 0x0000_0040,
    FILE_READ_ATTRIBUTES = 0x0000_0080,
    FILE_WRITE_ATTRIBUTES = 0x0000_0100,
    DELETE = 0x0001_0000,
    READ_CONTROL = 0x0002_0000,
    WRITE_DAC = 0x0004_0000,
    WRITE_OWNER = 0x0008_0000,
    SYNCHRONIZE = 0x0010_0000,
    ACCESS_SYSTEM_SECURITY = 0x0100_0000,
    MAXIMUM_ALLOWED = 0x0200_0000,
    GENERIC_ALL = 0x1000_0000,
    GENERIC_EXECUTE = 0x2000_0000,
    GENERIC_WRITE = 0x4000_0000,
    GENERIC_READ = 0x8000_0000,
}

impl AccessMask {
    /// Directory alias of FILE_READ_DATA.
    pub const FILE_LIST_DIRECTORY: AccessMask = AccessMask(0x1);
    /// Directory alias of FILE_WRITE_DATA.
    pub const FILE_ADD_FILE: AccessMask = AccessMask(0x2);
    /// Directory alias of FILE_APPEND_DATA.
    pub const FILE_ADD_SUBDIRECTORY: AccessMask = AccessMask(0x4);
    /// Directory alias of FILE_EXECUTE.
    pub const FILE_TRAVERSE: AccessMask = AccessMask(0x20);
    /// Every specific and standard right of a file ([MS-SMB2] 2.2.13.1.1 / winnt FILE_ALL_ACCESS).
    pub const FILE_ALL_ACCESS: AccessMask = AccessMask(0x001F_01FF);
    /// What GENERIC_READ maps to for files.
    pub const FILE_GENERIC_READ: AccessMask = AccessMask(0x0012_0089);
    /// What GENERIC_WRITE maps to for files.
    pub const FILE_GENERIC_WRITE: AccessMask = AccessMask(0x0012_0116);
    /// What GENERIC_EXECUTE maps to for files.
    pub const FILE_GENERIC_EXECUTE: AccessMask = AccessMask(0x0012_00A0);
}

wire_flags! {
    /// File attributes ([MS-FSCC] 2.6).
    pub struct FileAttributes(u32);
    READONLY = 0x0000_0001,
    HIDDEN = 0x0000_0002,
    SYSTEM = 0x0000_0004,
    DIRECTORY = 0x0000_0010,
    ARCHIVE = 0x0000_0020,
    NORMAL = 0x0000_0080,
    TEMPORARY = 0x0000_0100,
    SPARSE_FILE = 0x0000_0200,
    REPARSE_POINT = 0x0000_0400,
    COMPRESSED = 0x0000_0800,
    OFFLINE = 0x0000_1000,
    NOT_CONTENT_INDEXED = 0x0000_2000,
    ENCRYPTED = 0x0000_4000,
    INTEGRITY_STREAM = 0x0000_8000,
    NO_SCRUB_DATA = 0x0002_0000,
    RECALL_ON_OPEN = 0x0004_0000,
    PINNED = 0x0008_0000,
    UNPINNED = 0x0010_0000,
    RECALL_ON_DATA_ACCESS = 0x0040_0000,
}

wire_enum! {
    /// CREATE disposition ([MS-SMB2] 2.2.13 CreateDisposition).
    pub struct CreateDisposition(u32);
    prefix = "FILE_";
    SUPERSEDE = 0,
    OPEN = 1,
    CREATE = 2,
    OPEN_IF = 3,
    OVERWRITE = 4,
    OVERWRITE_IF = 5,
}

wire_flags! {
    /// CREATE options ([MS-SMB2] 2.2.13 CreateOptions).
    pub struct CreateOptions(u32);
    DIRECTORY_FILE = 0x0000_0001,
    WRITE_THROUGH = 0x0000_0002,
    SEQUENTIAL_ONLY = 0x0000_0004,
    NO_INTERMEDIATE_BUFFERING = 0x0000_0008,
    SYNCHRONOUS_IO_ALERT = 0x0000_0010,
    SYNCHRONOUS_IO_NONALERT = 0x0000_0020,
    NON_DIRECTORY_FILE = 0x0000_0040,
    COMPLETE_IF_OPLOCKED = 0x0000_0100,
    NO_EA_KNOWLEDGE = 0x0000_0200,
    OPEN_REMOTE_INSTANCE = 0x0000_0400,
    RANDOM_ACCESS = 0x0000_0800,
    DELETE_ON_CLOSE = 0x0000_1000,
    OPEN_BY_FILE_ID = 0x0000_2000,
    OPEN_FOR_BACKUP_INTENT = 0x0000_4000,
    NO_COMPRESSION = 0x0000_8000,
    OPEN_REQUIRING_OPLOCK = 0x0001_0000,
    DISALLOW_EXCLUSIVE = 0x0002_0000,
    RESERVE_OPFILTER = 0x0010_0000,
    OPEN_REPARSE_POINT = 0x0020_0000,
    OPEN_NO_RECALL = 0x0040_0000,
    OPEN_FOR_FREE_SPACE_QUERY = 0x0080_0000,
}

wire_flags! {
    /// CREATE share access ([MS-SMB2] 2.2.13 ShareAccess).
    pub struct ShareAccess(u32);
    READ = 0x0000_0001,
    WRITE = 0x0000_0002,
    DELETE = 0x0000_0004,
}

wire_enum! {
    /// CREATE impersonation level ([MS-SMB2] 2.2.13 ImpersonationLevel).
    pub struct ImpersonationLevel(u32);
    prefix = "";
    ANONYMOUS = 0,
    IDENTIFICATION = 1,
    IMPERSONATION = 2,
    DELEGATE = 3,
}

wire_enum! {
    /// Oplock level ([MS-SMB2] 2.2.13 RequestedOplockLevel, 2.2.14, 2.2.23).
    pub struct OplockLevel(u8);
    prefix = "SMB2_OPLOCK_LEVEL_";
    NONE = 0x00,
    II = 0x01,
    EXCLUSIVE = 0x08,
    BATCH = 0x09,
    LEASE = 0xFF,
}

impl OplockLevel {
    /// Alias spelled like the spec's SMB2_OPLOCK_LEVEL_II.
    pub const LEVEL_II: OplockLevel = OplockLevel(0x01);
}

/// A session identifier ([MS-SMB2] 2.2.1 SessionId).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub u64);

/// A tree connect identifier ([MS-SMB2] 2.2.1.2 TreeId).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TreeId(pub u32);

/// An async operation identifier ([MS-SMB2] 2.2.1.1 AsyncId).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AsyncId(pub u64);

macro_rules! id_fmt {
    ($t:ident, $w:literal) => {
        impl ::core::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($t), "(0x{:0", $w, "x})"), self.0)
            }
        }
        impl ::core::fmt::Display for $t {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!("0x{:0", $w, "x}"), self.0)
            }
        }
    };
}
id_fmt!(SessionId, 16);
id_fmt!(TreeId, 8);
id_fmt!(AsyncId, 16);

/// An open's identifier: persistent and volatile parts ([MS-SMB2] 2.2.14.1 SMB2_FILEID).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId {
    /// Survives reconnects (durable/persistent handles).
    pub persistent: u64,
    /// Unique among the open files of the connection.
    pub volatile: u64,
}

impl FileId {
    /// All ones: in a related compound, "the file opened by the previous request"
    /// ([MS-SMB2] 3.3.5.2.7.2).
    pub const ANY: FileId = FileId {
        persistent: u64::MAX,
        volatile: u64::MAX,
    };
    /// Wire size.
    pub const SIZE: usize = 16;

    /// Builds an id.
    pub const fn new(persistent: u64, volatile: u64) -> Self {
        FileId {
            persistent,
            volatile,
        }
    }

    /// True for [`FileId::ANY`].
    pub const fn is_any(self) -> bool {
        self.persistent == u64::MAX && self.volatile == u64::MAX
    }

    /// Reads 16 bytes.
    pub fn read(r: &mut crate::codec::Reader<'_>) -> crate::error::Result<Self> {
        Ok(FileId {
            persistent: r.u64()?,
            volatile: r.u64()?,
        })
    }

    /// Writes 16 bytes.
    pub fn write(&self, w: &mut crate::codec::Writer<'_>) {
        w.u64(self.persistent);
        w.u64(self.volatile);
    }
}

impl ::core::fmt::Debug for FileId {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        write!(f, "FileId({:x}:{:x})", self.persistent, self.volatile)
    }
}

impl ::core::fmt::Display for FileId {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        write!(f, "{:016x}:{:016x}", self.persistent, self.volatile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_survive_and_print_hex() {
        let c = Command(0x77);
        assert_eq!(c.name(), None);
        assert_eq!(c.to_string(), "0x0077");
        assert_eq!(Command::from(0x0005u16), Command::CREATE);
        assert_eq!(Command::CREATE.to_string(), "SMB2_CREATE");
        assert_eq!(Dialect::SMB3_1_1.to_string(), "SMB3_1_1");
        assert_eq!(format!("{:?}", Dialect(0x0399)), "0x0399");
    }

    #[test]
    fn all_nineteen_commands_in_order() {
        for i in 0u16..=0x12 {
            assert!(Command(i).is_known(), "command {i}");
        }
        assert_eq!(Command::OPLOCK_BREAK.0, 0x12);
    }

    #[test]
    fn flags_ops_and_display() {
        let f = HeaderFlags::SERVER_TO_REDIR | HeaderFlags::SIGNED;
        assert!(f.contains(HeaderFlags::SIGNED));
        assert!(!f.contains(HeaderFlags::ASYNC_COMMAND));
        assert!(!f.contains(HeaderFlags::empty()));
        assert_eq!(f.to_string(), "SERVER_TO_REDIR|SIGNED");
        assert_eq!(
            (f | HeaderFlags(0x100)).to_string(),
            "SERVER_TO_REDIR|SIGNED|0x00000100"
        );
        assert_eq!(HeaderFlags::empty().to_string(), "0x00000000");
        let mut g = f;
        g.remove(HeaderFlags::SIGNED);
        assert_eq!(g, HeaderFlags::SERVER_TO_REDIR);
        assert_eq!(f.without(HeaderFlags::SERVER_TO_REDIR), HeaderFlags::SIGNED);
        assert_eq!((f & HeaderFlags::SIGNED).bits(), 8);
    }

    #[test]
    fn file_id_any() {
        assert!(FileId::ANY.is_any());
        assert!(!FileId::new(1, 2).is_any());
    }
}
