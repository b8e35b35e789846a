package io.kvcache.nativ.libc;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import io.kvcache.nativ.NativeLibraries;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;

/**
 * The libc calls the host and disk tiers need, bound through JNA direct interface mapping.
 * Every call that can fail throws {@link LastErrorException} carrying errno.
 */
public interface LibC extends Library {

    /** The process's libc, loaded on first use. */
    LibC INSTANCE = NativeLibraries.load("c", LibC.class);

    int PROT_READ = 0x1;
    int PROT_WRITE = 0x2;
    int MAP_SHARED = 0x01;
    int MAP_PRIVATE = 0x02;
    int MAP_ANONYMOUS = 0x20;
    int MAP_NORESERVE = 0x4000;
    int MAP_POPULATE = 0x8000;
    long MAP_FAILED = -1L;

    int MADV_NORMAL = 0;
    int MADV_SEQUENTIAL = 2;
    int MADV_WILLNEED = 3;
    int MADV_DONTNEED = 4;
    int MADV_HUGEPAGE = 14;
    int MADV_DONTDUMP = 16;

    int RLIMIT_MEMLOCK = 8;
    long RLIM_INFINITY = -1L;

    int MFD_CLOEXEC = 0x0001;
    int MFD_ALLOW_SEALING = 0x0002;

    int O_RDONLY = 0;
    int O_RDWR = 2;
    int O_CLOEXEC = 0x80000;

    int F_ADD_SEALS = 1033;
    int F_SEAL_SHRINK = 0x0002;

    Pointer mmap(Pointer addr, long length, int prot, int flags, int fd, long offset) throws LastErrorException;

    int munmap(Pointer addr, long length) throws LastErrorException;

    int madvise(Pointer addr, long length, int advice) throws LastErrorException;

    int mlock(Pointer addr, long length) throws LastErrorException;

    int munlock(Pointer addr, long length) throws LastErrorException;

    int getrlimit(int resource, RLimit rlim) throws LastErrorException;

    int memfd_create(String name, int flags) throws LastErrorException;

    int ftruncate(int fd, long length) throws LastErrorException;

    /**
     * Reserves disk blocks for a byte range of a file, extending it.
     *
     * @return 0, or the error number (ENOSPC = 28 when the disk is full); errno is not set
     */
    int posix_fallocate(int fd, long offset, long length);

    int open(String path, int flags) throws LastErrorException;

    int close(int fd) throws LastErrorException;

    int ioctl(int fd, long request, Pointer arg) throws LastErrorException;

    /** {@code fcntl} with an integer argument (F_ADD_SEALS and the like). */
    int fcntl(int fd, int cmd, int arg) throws LastErrorException;

    long sysconf(int name);

    int POSIX_FADV_DONTNEED = 4;

    /**
     * Advises the kernel about a file range's use; {@link #POSIX_FADV_DONTNEED} drops its clean
     * pages from the page cache.
     *
     * @return 0, or the error number; errno is not set
     */
    int posix_fadvise(int fd, long offset, long length, int advice);

    /** @return the effective user id of this process */
    int geteuid();

    /** {@code struct rlimit}. */
    @Structure.FieldOrder({"rlim_cur", "rlim_max"})
    final class RLimit extends Structure {
        public long rlim_cur;
        public long rlim_max;

        /** An empty {@code rlimit} for {@code getrlimit} to fill. */
        public RLimit() {
        }
    }
}
