#if MPI
    import CMPI
    import Foundation

    /// MPI's `MPI_COMM_WORLD` (built only with the `MPI` trait). Errors are returned rather than fatal,
    /// so a failed call becomes a `DataParallelError` naming the call; a rank that dies is reported by
    /// the launcher (Open MPI's mpirun stops the other ranks and names the one that died).
    public final class MPIGroup: ProcessGroup, @unchecked Sendable {
        public let rank: Int
        public let size: Int
        private let comm: MPI_Comm

        private init(rank: Int, size: Int, comm: MPI_Comm) {
            self.rank = rank; self.size = size; self.comm = comm
        }

        /// Initialises MPI (once per process; `MPI_Finalize` runs at exit).
        public static func start() throws -> MPIGroup {
            var provided: Int32 = 0
            // FUNNELED: only the main thread calls MPI (the kernels' worker threads never do).
            try check(MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided), "MPI_Init_thread")
            guard let world = cmpi_comm_world() else { throw DataParallelError("MPI_COMM_WORLD is null") }
            try check(MPI_Comm_set_errhandler(world, cmpi_errors_return()), "MPI_Comm_set_errhandler")
            var r: Int32 = 0, n: Int32 = 0
            try check(MPI_Comm_rank(world, &r), "MPI_Comm_rank")
            try check(MPI_Comm_size(world, &n), "MPI_Comm_size")
            atexit {
                var done: Int32 = 0; MPI_Finalized(&done); if done == 0 { MPI_Finalize() }
            }
            return MPIGroup(rank: Int(r), size: Int(n), comm: world)
        }

        static func check(_ code: Int32, _ call: String) throws {
            guard code != cmpi_success() else { return }
            var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
            var length: Int32 = 0
            MPI_Error_string(code, &text, &length)
            throw DataParallelError(
                """
                \(call) failed (MPI error \(code): \
                \(String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))); another rank may \
                have died or been stopped
                """
            )
        }

        /// MPI counts are Int32: long buffers go in pieces of at most 2^30 elements.
        private func pieces(_ count: Int, _ body: (Int, Int32) throws -> Void) rethrows {
            var start = 0
            while start < count {
                let n = min(count - start, 1 << 30)
                try body(start, Int32(n))
                start += n
            }
        }

        public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
            try pieces(count) { s, n in
                try Self.check(MPI_Allreduce(cmpi_in_place(), buffer + s, n, cmpi_float(), cmpi_sum(), comm), "MPI_Allreduce")
            }
        }

        public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {
            try pieces(count) { s, n in
                try Self.check(MPI_Allreduce(cmpi_in_place(), buffer + s, n, cmpi_double(), cmpi_sum(), comm), "MPI_Allreduce")
            }
        }

        public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) throws {
            try pieces(count) { s, n in
                try Self.check(MPI_Bcast(bytes + s, n, cmpi_byte(), Int32(root), comm), "MPI_Bcast")
            }
        }

        public func barrier() throws { try Self.check(MPI_Barrier(comm), "MPI_Barrier") }

        public func abort(code: Int32) {
            MPI_Abort(comm, code)
            exit(code)
        }
    }
#endif
