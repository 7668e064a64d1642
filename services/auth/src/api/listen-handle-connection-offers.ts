import { auth } from "@phoenix/proto";
import { bidiStreaming } from "@phoenix/runtime/grpc";
import type { AuthContext } from "../context.js";
import { authenticateHandle } from "./authenticate.js";
import { serveQueueListen } from "./listen.js";

/** ListenHandleConnectionOffers: live listening on a handle's connection queue. */
export function listenHandleConnectionOffers(ctx: AuthContext) {
  return bidiStreaming<auth.ListenHandleConnectionOffersRequest, auth.ListenHandleConnectionOffersResponse>(
    (requests, call, stream) =>
      serveQueueListen(
        ctx,
        requests,
        call.signal,
        (event) => stream.send({ event }),
        async (tx, init, now) => {
          const { tbs, handle } = await authenticateHandle(
            ctx,
            tx,
            init,
            auth.ListenHandleConnectionOffersTbs,
            auth.AuthServiceService.listenHandleConnectionOffers,
            now,
          );
          return { owner: { handleHash: handle.handleHash }, sequenceNumberStart: tbs.sequenceNumberStart };
        },
      ),
  );
}
