// A contender that takes the lock with Apache Curator's own InterProcessMutex, so that the
// Python tests can put a real Curator client on the same lock path as zklock.
//
// test_curator_interop.py compiles this file with javac into a temporary directory and runs it
// with the Debian jars on the class path (see CURATOR_JARS there).  Two modes:
//
//   java CuratorContender HOSTS LOCK_PATH serve
//       Reads one command per line on stdin and answers with one line on stdout:
//         acquire MILLIS   -> "ACQUIRED <node> <czxid>" or "TIMEOUT" (InterProcessMutex.acquire(time))
//         release-when N   -> waits until LOCK_PATH has at least N children, then releases: "RELEASED"
//                             (after 30 s it releases anyway and says "RELEASED-UNQUEUED")
//         release          -> "RELEASED"
//         quit             -> releases if held, closes the session, exits 0
//       It prints "READY" once connected.  The parent drives it step by step, so every check is
//       a sequence of events and none depends on how long anything takes.
//
//   java CuratorContender HOSTS LOCK_PATH contend ROUNDS COUNTER_PATH LOG_FILE NAME
//       ROUNDS critical sections, each an unsafe read-modify-write of the counter znode,
//       bracketed by "enter" and "exit" lines appended to LOG_FILE (format below).
//
// Why a shared log file and not timestamps: System.nanoTime() has an arbitrary origin per JVM,
// so it cannot be compared with Python's time.monotonic() in another process.  Instead, every
// contender (Java and Python alike) appends its lines to one file opened with O_APPEND while it
// holds a POSIX record lock on that file (FileChannel.lock() here, fcntl.lockf() in the Python
// worker: both are fcntl(F_SETLKW) locks on Linux, so they exclude each other; flock(2) would
// not interact with them).  Each append is therefore one indivisible step, and the order of the
// lines in the file is the real-time order of those steps.  A critical section is the interval
// between its "enter" and "exit" lines; if two sections overlapped, the file would show an
// "enter" that is not followed by the same contender's "exit".  The counter update is a plain
// get + set (no version check), so a second holder inside the section would lose an update,
// which the final counter value and the value each section read expose as well.
//
// Log lines:   enter <name> <czxid of the holder's node>
//              exit <name> <czxid> <counter value read>

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.data.Stat;

public final class CuratorContender {

    /** InterProcessMutex keeps the holder's node path to itself; a subclass may read it. */
    static final class Mutex extends InterProcessMutex {
        Mutex(CuratorFramework client, String path) {
            super(client, path);
        }

        String heldNode() {
            return getLockPath();
        }
    }

    private CuratorContender() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: CuratorContender HOSTS LOCK_PATH serve|contend ...");
            System.exit(2);
        }
        // 10 s session (as the Python side's clients), 15 s to connect, a few retries.
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], 10_000, 15_000, new RetryNTimes(5, 200));
        client.start();
        try {
            if (!client.blockUntilConnected(15, TimeUnit.SECONDS)) {
                throw new IllegalStateException("no connection to " + args[0]);
            }
            Mutex mutex = new Mutex(client, args[1]);
            switch (args[2]) {
                case "serve" -> serve(client, mutex, args[1]);
                case "contend" -> contend(client, mutex, Integer.parseInt(args[3]), args[4], args[5], args[6]);
                default -> throw new IllegalArgumentException("unknown mode " + args[2]);
            }
        } finally {
            client.close();  // ends the session: any node of ours is gone once we exit
        }
    }

    private static long czxid(CuratorFramework client, String node) throws Exception {
        Stat stat = client.checkExists().forPath(node);
        if (stat == null) {
            throw new IllegalStateException("our lock node " + node + " is gone");
        }
        return stat.getCzxid();
    }

    private static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static void serve(CuratorFramework client, Mutex mutex, String lockPath) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        say("READY");
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.trim().split("\\s+");
            switch (words[0]) {
                case "acquire" -> {
                    if (mutex.acquire(Long.parseLong(words[1]), TimeUnit.MILLISECONDS)) {
                        String node = mutex.heldNode();
                        say("ACQUIRED " + node + " " + czxid(client, node));
                    } else {
                        say("TIMEOUT");
                    }
                }
                case "release-when" -> {
                    int wanted = Integer.parseInt(words[1]);
                    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                    boolean queued;
                    while (!(queued = client.getChildren().forPath(lockPath).size() >= wanted)
                            && System.nanoTime() < deadline) {
                        Thread.sleep(20);
                    }
                    mutex.release();
                    say(queued ? "RELEASED" : "RELEASED-UNQUEUED");  // the latter fails the test
                }
                case "release" -> {
                    mutex.release();
                    say("RELEASED");
                }
                case "quit" -> {
                    if (mutex.isAcquiredInThisProcess()) {
                        mutex.release();
                    }
                    return;
                }
                default -> throw new IllegalArgumentException("unknown command " + line);
            }
        }
    }

    private static void contend(CuratorFramework client, Mutex mutex, int rounds, String counter, String logFile,
                                String name) throws Exception {
        try (FileChannel log = FileChannel.open(Paths.get(logFile), StandardOpenOption.WRITE,
                StandardOpenOption.APPEND, StandardOpenOption.CREATE)) {
            for (int round = 0; round < rounds; round++) {
                mutex.acquire();
                try {
                    long token = czxid(client, mutex.heldNode());
                    append(log, "enter " + name + " " + token);
                    byte[] value = client.getData().forPath(counter);
                    long read = Long.parseLong(new String(value, StandardCharsets.US_ASCII));
                    Thread.sleep(2);  // widen the window a second holder would need to lose an update
                    client.setData().forPath(counter, Long.toString(read + 1).getBytes(StandardCharsets.US_ASCII));
                    append(log, "exit " + name + " " + token + " " + read);
                } finally {
                    mutex.release();
                }
            }
        }
    }

    /** One line, appended under the file's POSIX record lock (see the comment at the top). */
    private static void append(FileChannel log, String line) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
        FileLock held = log.lock();
        try {
            while (bytes.hasRemaining()) {
                log.write(bytes);
            }
        } finally {
            held.release();
        }
    }
}
