package io.kvcache.core.policy;

import java.util.ArrayList;
import java.util.List;
import java.util.function.LongPredicate;
import org.agrona.collections.Long2ObjectHashMap;

/** Least-recently-used order per tier, as intrusive doubly linked lists. */
final class LruPolicy implements EvictionPolicy {

    private static final class Node {
        final long blockId;
        Node prev;
        Node next;
        int tier;

        Node(long blockId) {
            this.blockId = blockId;
        }
    }

    /** Per tier: head is least recently used, tail most recently used. */
    private final List<Node[]> lists = new ArrayList<>();
    private final Long2ObjectHashMap<Node> nodes = new Long2ObjectHashMap<>();

    private Node[] list(int tier) {
        while (lists.size() <= tier) {
            lists.add(new Node[2]);
        }
        return lists.get(tier);
    }

    @Override
    public void onInsert(long blockId, int tier) {
        Node n = nodes.get(blockId);
        if (n != null) {
            unlink(n);
        } else {
            n = new Node(blockId);
            nodes.put(blockId, n);
        }
        n.tier = tier;
        linkTail(n);
    }

    @Override
    public void onRemove(long blockId, int tier) {
        Node n = nodes.remove(blockId);
        if (n != null) {
            unlink(n);
        }
    }

    @Override
    public void onAccess(long blockId, int tier) {
        Node n = nodes.get(blockId);
        if (n != null) {
            unlink(n);
            n.tier = tier;
            linkTail(n);
        }
    }

    @Override
    public void forEachCandidate(int tier, LongPredicate isProtected, LongPredicate visitor) {
        Node n = list(tier)[0];
        while (n != null) {
            Node next = n.next;
            if (visitor.test(n.blockId)) {
                return;
            }
            n = next;
        }
    }

    private void linkTail(Node n) {
        Node[] l = list(n.tier);
        n.prev = l[1];
        n.next = null;
        if (l[1] != null) {
            l[1].next = n;
        } else {
            l[0] = n;
        }
        l[1] = n;
    }

    private void unlink(Node n) {
        Node[] l = list(n.tier);
        if (n.prev != null) {
            n.prev.next = n.next;
        } else {
            l[0] = n.next;
        }
        if (n.next != null) {
            n.next.prev = n.prev;
        } else {
            l[1] = n.prev;
        }
        n.prev = null;
        n.next = null;
    }
}
