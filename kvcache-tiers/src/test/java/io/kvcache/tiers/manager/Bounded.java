package io.kvcache.tiers.manager;

import io.kvcache.core.ResidencyHandle;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs a call that may hang (a copy that never completes, a close that joins forever) on a
 * daemon thread of its own and waits for it with a bound: a hang fails the test with a dump of
 * every thread's stack instead of hanging the build. A hung thread is left behind; being a
 * daemon, it does not keep the JVM alive.
 */
final class Bounded {
    private Bounded() {
    }

    @FunctionalInterface
    interface Action {
        void run() throws Exception;
    }

    /** Daemon threads for bounded calls; one stuck in a hang stays stuck, the pool starts another. */
    private static final ExecutorService POOL = Executors.newCachedThreadPool(r ->
            Thread.ofPlatform().daemon().name("bounded-call-", 0).unstarted(r));

    /** @return the call's result; its exception is rethrown as is (unchecked) or wrapped */
    static <T> T call(String what, Duration limit, Callable<T> call) {
        FutureTask<T> task = new FutureTask<>(call);
        POOL.execute(task);
        try {
            return task.get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(what + " did not complete within " + limit.toSeconds() + " s (hang); "
                    + "its thread is left behind. Threads:\n" + threadDump());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(what + ": interrupted", e);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) {
                throw r;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw new AssertionError(what + " failed: " + c, c);
        }
    }

    static void run(String what, Duration limit, Action action) {
        call(what, limit, () -> {
            action.run();
            return null;
        });
    }

    /**
     * {@link ResidencyHandle#await()} within a bound: a copy that never completes fails the test.
     *
     * @throws io.kvcache.core.BlockLostException as await does
     */
    static void await(ResidencyHandle h, Duration limit) {
        try {
            h.ready().get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("residency of blocks [" + h.fromBlock() + ", " + (h.fromBlock() + h.blockCount())
                    + ") not ready within " + limit.toSeconds() + " s (hang). Threads:\n" + threadDump());
        } catch (ExecutionException e) {
            // await turns the failure into the BlockLostException naming the block
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
        h.await();
    }

    /** @return every live thread's stack, with the locks held and waited for */
    static String threadDump() {
        StringBuilder sb = new StringBuilder();
        for (ThreadInfo ti : ManagementFactory.getThreadMXBean().dumpAllThreads(true, true)) {
            sb.append('"').append(ti.getThreadName()).append("\" ").append(ti.getThreadState());
            if (ti.getLockName() != null) {
                sb.append(" on ").append(ti.getLockName());
            }
            if (ti.getLockOwnerName() != null) {
                sb.append(" owned by \"").append(ti.getLockOwnerName()).append('"');
            }
            sb.append('\n');
            // ThreadInfo.toString() cuts stacks at 8 frames: print them whole, up to the test framework
            StackTraceElement[] stack = ti.getStackTrace();
            for (int i = 0; i < stack.length; i++) {
                String c = stack[i].getClassName();
                if (c.startsWith("org.junit.") || c.startsWith("jdk.internal.reflect.")) {
                    sb.append("\t... ").append(stack.length - i).append(" frames of the test framework\n");
                    break;
                }
                sb.append("\tat ").append(stack[i]).append('\n');
            }
            sb.append('\n');
        }
        return sb.toString();
    }
}
