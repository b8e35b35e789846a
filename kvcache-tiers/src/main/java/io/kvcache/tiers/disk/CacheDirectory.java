package io.kvcache.tiers.disk;

import io.kvcache.nativ.libc.LibC;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The cache directory: created 0700 and its files 0600 whatever the umask (permissions are set
 * explicitly after creation, which the umask does not mask), refused when it or a cache file in
 * it belongs to another user or is writable by group or others, and held by one process at a
 * time through an exclusive lock on {@value #LOCK_FILE}.
 */
final class CacheDirectory implements AutoCloseable {
    static final String LOCK_FILE = "kvcache.lock";
    static final Set<PosixFilePermission> DIR_PERMISSIONS = PosixFilePermissions.fromString("rwx------");
    static final Set<PosixFilePermission> FILE_PERMISSIONS = PosixFilePermissions.fromString("rw-------");

    final Path dir;
    private final FileChannel lockChannel;
    private final FileLock lock;

    private CacheDirectory(Path dir, FileChannel lockChannel, FileLock lock) {
        this.dir = dir;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /**
     * Creates or checks the directory and takes its lock.
     *
     * @throws DiskFormatException             when ownership or permissions are unsafe
     * @throws CacheDirectoryLockedException   when another process or tier holds it
     */
    static CacheDirectory open(Path dir) throws IOException {
        dir = dir.toAbsolutePath().normalize();
        if (Files.isSymbolicLink(dir)) {
            throw new DiskFormatException("cache path " + dir + " is a symbolic link" + target(dir)
                    + "; refused: a link could send the cache, its lock and its permissions elsewhere. "
                    + "Give the directory itself");
        }
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, DIR_PERMISSIONS);
        }
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new DiskFormatException("cache path " + dir + " is not a directory");
        }
        requireOwnedByMe(dir);
        if (!Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS).equals(DIR_PERMISSIONS)) {
            // ours: tighten rather than refuse, so a directory made by mkdir under a loose umask is fine
            Files.setPosixFilePermissions(dir, DIR_PERMISSIONS);
        }
        Path lockPath = dir.resolve(LOCK_FILE);
        prepareFile(lockPath);
        FileChannel ch = FileChannel.open(lockPath, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            ch.close();
            throw new CacheDirectoryLockedException("cache directory " + dir
                    + " is already open by another disk tier in this JVM; close it first");
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        if (lock == null) {
            String holder = holderOf(ch);
            ch.close();
            throw new CacheDirectoryLockedException("cache directory " + dir + " is in use by another process"
                    + holder + " (exclusive lock on " + lockPath + "); one process per cache directory");
        }
        ch.truncate(0);
        ch.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)), 0);
        return new CacheDirectory(dir, ch, lock);
    }

    private static String holderOf(FileChannel ch) {
        try {
            ByteBuffer b = ByteBuffer.allocate(32);
            ch.read(b, 0);
            String pid = new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII).trim();
            return pid.isEmpty() ? "" : " (pid " + pid + ")";
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * Creates a file 0600 when absent; when present, refuses it if it is not a regular file of
     * ours or is writable by group or others.
     *
     * @return whether the file existed
     */
    static boolean prepareFile(Path file) throws IOException {
        if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
            Files.createFile(file);
            Files.setPosixFilePermissions(file, FILE_PERMISSIONS);
            return false;
        }
        checkExisting(file);
        return true;
    }

    /** Refuses an existing file that is a link, belongs to another user, or is group/other-writable. */
    static void checkExisting(Path file) throws IOException {
        if (Files.isSymbolicLink(file)) {
            throw new DiskFormatException("cache file " + file + " is a symbolic link" + target(file)
                    + "; refused: the tier writes only files of its own directory");
        }
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new DiskFormatException("cache file " + file
                    + " is not a regular file (a directory, device or other special file); refused");
        }
        requireOwnedByMe(file);
        Set<PosixFilePermission> p = Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS);
        if (p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new DiskFormatException("cache file " + file + " is writable by group or others ("
                    + PosixFilePermissions.toString(p) + "): another user could have changed it; refused. "
                    + "Remove it or chmod 600 it if you trust its content");
        }
        if (!p.equals(FILE_PERMISSIONS)) {
            Files.setPosixFilePermissions(file, FILE_PERMISSIONS);
        }
    }

    private static String target(Path link) {
        try {
            return " (to " + Files.readSymbolicLink(link) + ")";
        } catch (IOException | UnsupportedOperationException e) {
            return "";
        }
    }

    private static void requireOwnedByMe(Path p) throws IOException {
        int owner = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int me = LibC.INSTANCE.geteuid();
        if (owner != me) {
            throw new DiskFormatException("cache path " + p + " belongs to uid " + owner + ", not to this process (uid "
                    + me + "); refused");
        }
    }

    @Override
    public void close() throws IOException {
        try {
            if (lock.isValid()) {
                lock.release();
            }
        } finally {
            lockChannel.close();
        }
    }
}
