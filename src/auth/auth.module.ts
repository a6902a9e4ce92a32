import { Module } from '@nestjs/common';
import { AuthController } from './auth.controller';
import { AuthService } from './auth.service';
import { DevTokenService } from './dev-token.service';
import { JwtAuthGuard } from './jwt-auth.guard';
import { MemoryRevocationStore } from './memory-revocation.store';
import { RevocationStore } from './revocation-store.interface';
import { TokenVerifier } from './token-verifier.service';

@Module({
  controllers: [AuthController],
  providers: [
    TokenVerifier,
    AuthService,
    DevTokenService,
    JwtAuthGuard,
    { provide: RevocationStore, useClass: MemoryRevocationStore },
  ],
  exports: [AuthService, JwtAuthGuard, RevocationStore],
})
export class AuthModule {}
