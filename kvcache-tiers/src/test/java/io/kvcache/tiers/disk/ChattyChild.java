package io.kvcache.tiers.disk;

/**
 * A child for {@link ChildRunTest}: {@code flood N} writes lines {@code line 0} .. {@code line N-1}
 * as fast as it can, then waits forever; {@code silent} writes nothing and waits forever;
 * {@code exit N} writes {@code bye} and exits with status N.
 */
public final class ChattyChild {
    private ChattyChild() {
    }

    public static void main(String[] args) throws InterruptedException {
        switch (args[0]) {
            case "flood" -> {
                int n = Integer.parseInt(args[1]);
                for (int i = 0; i < n; i++) {
                    System.out.println("line " + i);
                }
                System.out.flush();
                Thread.sleep(Long.MAX_VALUE);
            }
            case "silent" -> Thread.sleep(Long.MAX_VALUE);
            case "exit" -> {
                System.out.println("bye");
                System.out.flush();
                System.exit(Integer.parseInt(args[1]));
            }
            default -> throw new IllegalArgumentException(args[0]);
        }
    }
}
