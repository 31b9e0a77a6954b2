//! From what the workload did to a file to AppArmor's permission letters.
//!
//! | recorded op                                   | letter |
//! |-----------------------------------------------|--------|
//! | read                                          | `r`    |
//! | write, create, truncate, rename, unlink, mkdir, rmdir, symlink, chmod, chown | `w` |
//! | append (without any of the above)             | `a`    |
//! | link (the new name)                           | `l`    |
//! | flock                                         | `k`    |
//! | mmap with PROT_EXEC                           | `m`    |
//! | exec                                          | `ix`   |
//!
//! `w` and `a` cannot appear together in one rule: `w` already allows appending, so `w` wins.
//! Creating, deleting, renaming and changing attributes are all part of `w` in AppArmor's
//! policy language. Executables get `ix`: the binary runs inside the container, under the same
//! profile.

use crate::model::activity::FileOp;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Perms {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub link: bool,
    pub lock: bool,
    pub mmap: bool,
    pub exec: bool,
}

impl Perms {
    pub fn from_ops<'a>(ops: impl IntoIterator<Item = &'a FileOp>) -> Self {
        let mut p = Perms::default();
        for op in ops {
            match op {
                FileOp::Read => p.read = true,
                FileOp::Append => p.append = true,
                FileOp::Write
                | FileOp::Create
                | FileOp::Truncate
                | FileOp::Rename
                | FileOp::Unlink
                | FileOp::Mkdir
                | FileOp::Rmdir
                | FileOp::Symlink
                | FileOp::Chmod
                | FileOp::Chown => p.write = true,
                FileOp::Link => p.link = true,
                FileOp::Lock => p.lock = true,
                FileOp::MmapExec => p.mmap = true,
                FileOp::Exec => p.exec = true,
            }
        }
        p.normalized()
    }

    fn normalized(mut self) -> Self {
        if self.write {
            self.append = false;
        }
        self
    }

    pub fn union(self, o: Perms) -> Perms {
        Perms {
            read: self.read || o.read,
            write: self.write || o.write,
            append: self.append || o.append,
            link: self.link || o.link,
            lock: self.lock || o.lock,
            mmap: self.mmap || o.mmap,
            exec: self.exec || o.exec,
        }
        .normalized()
    }

    /// Only reading (and mapping): the kind of rule a directory collapse may merge.
    pub fn is_read_only(&self) -> bool {
        !(self.write || self.append || self.link || self.lock || self.exec)
    }

    pub fn is_empty(&self) -> bool {
        *self == Perms::default()
    }

    /// Letters in the order AppArmor's documentation lists them, exec mode last.
    pub fn letters(&self) -> String {
        let mut s = String::new();
        for (on, c) in [
            (self.read, 'r'),
            (self.write, 'w'),
            (self.append, 'a'),
            (self.link, 'l'),
            (self.lock, 'k'),
            (self.mmap, 'm'),
        ] {
            if on {
                s.push(c);
            }
        }
        if self.exec {
            s.push_str("ix");
        }
        s
    }

    #[cfg(test)]
    pub fn from_letters(l: &str) -> Self {
        Perms {
            read: l.contains('r'),
            write: l.contains('w'),
            append: l.contains('a'),
            link: l.contains('l'),
            lock: l.contains('k'),
            mmap: l.contains('m'),
            exec: l.contains('x'),
        }
        .normalized()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FileOp::*;

    #[test]
    fn ops_to_letters() {
        let cases: &[(&[FileOp], &str)] = &[
            (&[Read], "r"),
            (&[Write], "w"),
            (&[Create], "w"),
            (&[Truncate], "w"),
            (&[Append], "a"),
            (&[Append, Write], "w"),
            (&[Append, Create], "w"),
            (&[Read, Append], "ra"),
            (&[Link], "l"),
            (&[Lock, Read], "rk"),
            (&[MmapExec, Read], "rm"),
            (&[Exec], "ix"),
            (&[Exec, Read, MmapExec], "rmix"),
            (&[Unlink], "w"),
            (&[Rename], "w"),
            (&[Mkdir], "w"),
            (&[Rmdir], "w"),
            (&[Symlink], "w"),
            (&[Chmod], "w"),
            (&[Chown], "w"),
            (
                &[Read, Write, Append, Link, Lock, MmapExec, Exec],
                "rwlkmix",
            ),
        ];
        for (ops, want) in cases {
            assert_eq!(Perms::from_ops(ops.iter()).letters(), *want, "{ops:?}");
        }
    }

    #[test]
    fn union_keeps_w_over_a() {
        let a = Perms::from_ops([Append].iter());
        let w = Perms::from_ops([Write].iter());
        assert_eq!(a.union(w).letters(), "w");
        assert!(Perms::from_ops([Read, MmapExec].iter()).is_read_only());
        assert!(!Perms::from_ops([Read, Lock].iter()).is_read_only());
    }
}
