//! Reads the few struct member offsets the programs need from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`). A small reader for one question, not a BTF library: it walks
//! the type section once and answers "at which byte is member M of struct S".

use profiler_common::cgroup_id::CgroupIdPath;

const MAGIC: u16 = 0xeb9f;

/// The BTF kinds this reader distinguishes (`include/uapi/linux/btf.h`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not BTF data")]
    NotBtf,
    #[error("BTF data is truncated")]
    Truncated,
    #[error("BTF kind {0} is unknown to this reader")]
    UnknownKind(u32),
    #[error("no struct {0} in the kernel's BTF")]
    NoStruct(String),
    #[error("struct {0} has no member {1}")]
    NoMember(String, String),
    #[error("{0}.{1} is not a {2}-byte integer")]
    NotInt(String, String, u32),
}

struct Type {
    name_off: u32,
    kind: u32,
    kind_flag: bool,
    /// `size` for INT/STRUCT/UNION/ENUM, `type` for PTR/TYPEDEF/CONST/….
    size_or_type: u32,
    /// STRUCT/UNION members: (name offset, type id, offset in bits).
    members: Vec<(u32, u32, u32)>,
}

/// The parsed type section: types by id (id 0 is `void`) and the string section.
pub struct Btf<'a> {
    types: Vec<Type>,
    strings: &'a [u8],
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    let bytes = data.get(at..at + 4).ok_or(BtfError::Truncated)?;
    Ok(u32::from_le_bytes(
        bytes.try_into().map_err(|_| BtfError::Truncated)?,
    ))
}

impl<'a> Btf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, BtfError> {
        let magic = data.get(..2).ok_or(BtfError::NotBtf)?;
        if u16::from_le_bytes([magic[0], magic[1]]) != MAGIC {
            return Err(BtfError::NotBtf);
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
        let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).ok_or(BtfError::Truncated)?;
            data.get(start..start.checked_add(len).ok_or(BtfError::Truncated)?)
                .ok_or(BtfError::Truncated)
        };
        let type_data = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?;
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            kind_flag: false,
            size_or_type: 0,
            members: Vec::new(),
        }];
        let mut at = 0;
        while at < type_data.len() {
            let name_off = u32_at(type_data, at)?;
            let info = u32_at(type_data, at + 4)?;
            let size_or_type = u32_at(type_data, at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let mut members = Vec::new();
            let extra = match kind {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION => {
                    for i in 0..vlen {
                        let m = at + i * 12;
                        members.push((
                            u32_at(type_data, m)?,
                            u32_at(type_data, m + 4)?,
                            u32_at(type_data, m + 8)?,
                        ));
                    }
                    vlen * 12
                }
                kind::ENUM | kind::FUNC_PROTO => vlen * 8,
                kind::DATASEC | kind::ENUM64 => vlen * 12,
                kind::PTR
                | kind::FWD
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::TYPE_TAG => 0,
                other => return Err(BtfError::UnknownKind(other)),
            };
            at += extra;
            types.push(Type {
                name_off,
                kind,
                kind_flag: info >> 31 != 0,
                size_or_type,
                members,
            });
        }
        Ok(Self { types, strings })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn struct_named(&self, name: &str) -> Result<&Type, BtfError> {
        self.types
            .iter()
            .find(|t| {
                t.kind == kind::STRUCT
                    && !t.members.is_empty()
                    && self.name(t.name_off) == name.as_bytes()
            })
            .ok_or_else(|| BtfError::NoStruct(name.to_owned()))
    }

    /// Byte offset and type id of `member` in `struct name`. Bitfields are not members
    /// a pointer walk can use, so they count as missing.
    pub fn member(&self, name: &str, member: &str) -> Result<(u32, u32), BtfError> {
        let missing = || BtfError::NoMember(name.to_owned(), member.to_owned());
        let s = self.struct_named(name)?;
        let &(_, type_id, bits) = s
            .members
            .iter()
            .find(|(n, _, _)| self.name(*n) == member.as_bytes())
            .ok_or_else(missing)?;
        let bits = if s.kind_flag {
            bits & 0x00ff_ffff
        } else {
            bits
        };
        if bits % 8 != 0 {
            return Err(missing());
        }
        Ok((bits / 8, type_id))
    }

    /// The size of `type_id` when it is (a typedef/qualifier of) an integer.
    fn int_size(&self, mut type_id: u32) -> Option<u32> {
        for _ in 0..16 {
            let t = self.types.get(type_id as usize)?;
            match t.kind {
                kind::INT => return Some(t.size_or_type),
                kind::TYPEDEF | kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => {
                    type_id = t.size_or_type
                }
                _ => return None,
            }
        }
        None
    }
}

/// The offsets of `task_struct.cgroups → css_set.dfl_cgrp → cgroup.kn → kernfs_node.id`.
pub fn cgroup_id_path(btf: &Btf) -> Result<CgroupIdPath, BtfError> {
    let (task_cgroups, _) = btf.member("task_struct", "cgroups")?;
    let (css_set_dfl_cgrp, _) = btf.member("css_set", "dfl_cgrp")?;
    let (cgroup_kn, _) = btf.member("cgroup", "kn")?;
    let (kernfs_node_id, id_type) = btf.member("kernfs_node", "id")?;
    if btf.int_size(id_type) != Some(8) {
        return Err(BtfError::NotInt("kernfs_node".into(), "id".into(), 8));
    }
    Ok(CgroupIdPath {
        task_cgroups,
        css_set_dfl_cgrp,
        cgroup_kn,
        kernfs_node_id,
    })
}

/// The running kernel's path, if its BTF says where the fields are.
pub fn running_kernel_cgroup_id_path() -> Result<CgroupIdPath, String> {
    let data = std::fs::read("/sys/kernel/btf/vmlinux")
        .map_err(|e| format!("reading /sys/kernel/btf/vmlinux: {e}"))?;
    let btf = Btf::parse(&data).map_err(|e| e.to_string())?;
    cgroup_id_path(&btf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF bytes: a header, the given types (already encoded), the strings.
    fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]); // version, flags
        out.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.extend_from_slice(types);
        out.extend_from_slice(strings);
        out
    }

    fn ty(out: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, size_or_type: u32) {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
        out.extend_from_slice(&size_or_type.to_le_bytes());
    }

    fn member(out: &mut Vec<u8>, name: u32, type_id: u32, bits: u32) {
        for v in [name, type_id, bits] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A kernel in miniature: u64, the four structs with the fields at known places, and
    /// unrelated kinds in between that the reader must step over.
    fn mini_kernel(id_size: u32) -> Vec<u8> {
        let strings =
            b"\0u64\0task_struct\0cgroups\0css_set\0dfl_cgrp\0cgroup\0kn\0kernfs_node\0id\0pid\0e\0";
        let off = |s: &str| {
            let needle = format!("\0{s}\0");
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut t = Vec::new();
        ty(&mut t, off("u64"), kind::INT, 0, id_size); // 1
        t.extend_from_slice(&[0; 4]);
        ty(&mut t, 0, kind::ENUM, 1, 4); // 2: an enum with one value
        t.extend_from_slice(&[0; 8]);
        ty(&mut t, off("task_struct"), kind::STRUCT, 2, 4000); // 3
        member(&mut t, off("pid"), 1, 8 * 8);
        member(&mut t, off("cgroups"), 1, 2376 * 8);
        ty(&mut t, off("css_set"), kind::STRUCT, 1, 544); // 4
        member(&mut t, off("dfl_cgrp"), 1, 112 * 8);
        ty(&mut t, 0, kind::ARRAY, 0, 0); // 5
        t.extend_from_slice(&[0; 12]);
        ty(&mut t, off("cgroup"), kind::STRUCT, 1, 2240); // 6
        member(&mut t, off("kn"), 1, 256 * 8);
        ty(&mut t, off("kernfs_node"), kind::STRUCT, 1, 136); // 7
        member(&mut t, off("id"), 1, 96 * 8);
        blob(&t, strings)
    }

    #[test]
    fn finds_the_chain() {
        let data = mini_kernel(8);
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(
            cgroup_id_path(&btf).unwrap(),
            CgroupIdPath {
                task_cgroups: 2376,
                css_set_dfl_cgrp: 112,
                cgroup_kn: 256,
                kernfs_node_id: 96,
            }
        );
        assert_eq!(
            btf.member("task_struct", "comm"),
            Err(BtfError::NoMember("task_struct".into(), "comm".into()))
        );
        assert_eq!(
            btf.member("mm_struct", "pgd"),
            Err(BtfError::NoStruct("mm_struct".into()))
        );
    }

    #[test]
    fn an_id_that_is_not_a_u64_is_refused() {
        let data = mini_kernel(4);
        let btf = Btf::parse(&data).unwrap();
        assert!(matches!(cgroup_id_path(&btf), Err(BtfError::NotInt(..))));
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        let data = mini_kernel(8);
        assert!(matches!(Btf::parse(b"nope"), Err(BtfError::NotBtf)));
        for cut in [3, 10, 30, data.len() - 5] {
            assert!(Btf::parse(&data[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// On this machine's kernel, the answer must agree with what the helper reads: checked
    /// end to end by the recording tests; here, that the reader understands the real thing.
    #[test]
    fn reads_the_running_kernel() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
            return;
        }
        let path = running_kernel_cgroup_id_path().unwrap();
        assert!(path.known());
        assert!(path.kernfs_node_id > 0 && path.cgroup_kn > 0, "{path:?}");
    }
}
